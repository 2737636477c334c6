package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Each source (anonymous, WithPriority) starts at most one fetch per
// interval, and a fetch the anonymous source started does not spend the
// priority source's slot.
func TestSourcesAreThrottledApart(t *testing.T) {
	published, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set := `{"keys":[` + jwk(t, jose.JSONWebKey{Key: &published.PublicKey, KeyID: "pipa", Algorithm: "ES256", Use: "sig"}) + `]}`
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(set))
	}))
	t.Cleanup(srv.Close)
	s := New(Config{URL: srv.URL, Client: srv.Client(), Timeout: 5 * time.Second, Interval: time.Hour})
	sign := func(k *ecdsa.PrivateKey, kid string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign([]byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	forged := sign(forger, "unknown")
	check := func(ctx context.Context, tok string, wantFetches int64, wantThrottled bool) {
		t.Helper()
		_, err := s.VerifySignature(ctx, tok)
		if err == nil {
			t.Fatalf("a forged token verified")
		}
		if got := errors.Is(err, ErrThrottled); got != wantThrottled {
			t.Errorf("throttled = %v (%v), want %v", got, err, wantThrottled)
		}
		if n := fetches.Load(); n != wantFetches {
			t.Errorf("%d fetches, want %d", n, wantFetches)
		}
	}
	ctx := context.Background()
	check(ctx, forged, 1, false) // the anonymous source's fetch
	check(ctx, forged, 1, true)  // its slot is spent
	check(WithPriority(ctx), forged, 2, false)
	check(WithPriority(ctx), forged, 2, true)
	check(ctx, forged, 2, true)
	if _, err := s.VerifySignature(WithPriority(ctx), sign(published, "pipa")); err != nil {
		t.Errorf("PiPA's token: %v", err)
	}
}
