package pipaauth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

type countJWKS struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    int
}

func (c *countJWKS) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks") {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return c.base.RoundTrip(r)
}

// The back-channel logout endpoint is unauthenticated, and go-oidc fetches
// the JWKS again for every kid it has not cached: forged tokens with
// unknown kids must not make the application fetch PiPA's JWKS once per
// request (UnknownKeyInterval), and a valid token still goes through
// amid them (found by the security review).
func TestBackChannelLogoutUnknownKidsAreThrottled(t *testing.T) {
	t.Parallel()
	counter := &countJWKS{}
	b := newBCL(t, true, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) {
		c := *cfg.HTTPClient
		counter.base = c.Transport
		if counter.base == nil {
			counter.base = http.DefaultTransport
		}
		c.Transport = counter
		cfg.HTTPClient = &c
	}})
	// warm the key set with one valid token
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{})); r.status != http.StatusOK {
		t.Fatalf("valid token: %d %s", r.status, r.body)
	}
	counter.mu.Lock()
	warm := counter.n
	counter.mu.Unlock()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: fmt.Sprint("kid-", i), Algorithm: "RS256"}}, (&jose.SignerOptions{}).WithType("logout+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]any{"iss": b.h.provider.URL, "aud": clientID, "iat": time.Now().Unix(), "jti": fmt.Sprint("k", i), "sub": "x",
			"events": map[string]any{pipatest.BackChannelLogoutEvent: map[string]any{}}})
		jws, _ := signer.Sign(payload)
		tok, _ := jws.CompactSerialize()
		b.h.secrets.addToken(tok)
		if r := b.send(t, tok); r.status != http.StatusBadRequest && r.status != http.StatusServiceUnavailable {
			t.Fatalf("forged token: %d", r.status)
		}
	}
	counter.mu.Lock()
	fetches := counter.n - warm
	counter.mu.Unlock()
	t.Logf("%d forged logout tokens with unknown kids caused %d JWKS fetches", n, fetches)
	if fetches > 2 {
		t.Errorf("%d unauthenticated requests made the application fetch PiPA's JWKS %d times", n, fetches)
	}
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{})); r.status != http.StatusOK {
		t.Errorf("a valid token after the forged ones: %d %s, want 200", r.status, r.body)
	}
}
