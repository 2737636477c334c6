package pipaauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// UnknownKeyInterval is how often, at most, a logout token signed with a
// key id (kid) that no logout token verified before may reach PiPA's key
// set: go-oidc fetches the JWKS again for every kid it has not cached, and
// the back-channel logout endpoint takes anonymous requests, so without
// this bound anyone could make every instance fetch PiPA's JWKS once per
// request. go-oidc checks iss, aud and exp first, so only tokens that pass
// those count. A token refused for this gets 503 temporarily_unavailable
// with Retry-After, so the provider sends it again; after a key rotation
// the first token with the new kid goes through, and its kid is known from
// then on.
const UnknownKeyInterval = 10 * time.Second

// throttledKey is the context key of the flag throttledKeySet sets when it
// refuses a token for UnknownKeyInterval.
type throttledKey struct{}

var errKeyThrottled = errors.New("unknown kid, and another unknown kid was tried less than UnknownKeyInterval ago")

// throttledKeySet is the key set of the logout-token verifier: PiPA's JWKS
// (go-oidc's RemoteKeySet, with a cache of its own), with the kids that
// verified remembered and unknown ones let through at most once per
// UnknownKeyInterval. It is safe for concurrent use.
type throttledKeySet struct {
	inner oidc.KeySet

	mu       sync.Mutex
	known    map[string]bool
	lastMiss time.Time
}

// maxKnownKeys bounds throttledKeySet.known; providers publish a handful.
const maxKnownKeys = 64

// VerifySignature implements oidc.KeySet.
func (k *throttledKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, signatureAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("malformed JWS")
	}
	kid := jws.Signatures[0].Header.KeyID
	if !k.allow(kid, time.Now()) { // a rate: the wall clock, not Config.Now
		if flag, ok := ctx.Value(throttledKey{}).(*bool); ok {
			*flag = true
		}
		return nil, errKeyThrottled
	}
	payload, err := k.inner.VerifySignature(ctx, jwt)
	if err == nil {
		k.verified(kid)
	}
	return payload, err
}

// allow reports whether a token with kid may be verified now.
func (k *throttledKeySet) allow(kid string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.known[kid] {
		return true
	}
	if d := now.Sub(k.lastMiss); !k.lastMiss.IsZero() && d >= 0 && d < UnknownKeyInterval {
		return false
	}
	k.lastMiss = now
	return true
}

// verified records that a token with kid passed signature verification.
func (k *throttledKeySet) verified(kid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.known == nil || len(k.known) >= maxKnownKeys {
		k.known = map[string]bool{}
	}
	k.known[kid] = true
}

// fetched records the kids of a JWKS the key set fetched: they are known
// from then on, so a flood of unknown kids cannot hold back tokens signed
// with PiPA's real keys.
func (k *throttledKeySet) fetched(kids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.known = map[string]bool{}
	for _, kid := range kids[:min(len(kids), maxKnownKeys)] {
		k.known[kid] = true
	}
}

// jwksRecorder is the transport of the logout-token key set's client: it
// hands the kids of every JWKS it fetches to onKeys, and the body on.
type jwksRecorder struct {
	base   http.RoundTripper
	onKeys func(kids []string)
}

func (j *jwksRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := j.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body) // the client caps it (httpx)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err == nil && json.Unmarshal(body, &set) == nil {
		kids := make([]string, 0, len(set.Keys))
		for _, key := range set.Keys {
			kids = append(kids, key.KID)
		}
		j.onKeys(kids)
	}
	return resp, nil
}

// logoutTokenVerifier returns the verifier of back-channel logout tokens:
// PiPA's keys through a throttledKeySet, this client as the audience, the
// algorithms discovery lists for ID tokens (among go-oidc's asymmetric
// ones; RS256 when it lists none), and no exp check (exp may be absent;
// the handler checks it with ClockSkew).
func (a *Auth) logoutTokenVerifier(d discovery) *oidc.IDTokenVerifier {
	keys := &throttledKeySet{}
	client := *a.client
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client.Transport = &jwksRecorder{base: base, onKeys: keys.fetched}
	keys.inner = oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), &client), d.JWKSURI)
	var algs []string
	for _, alg := range d.IDTokenAlgs {
		switch alg {
		case oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA:
			algs = append(algs, alg)
		}
	}
	return oidc.NewVerifier(a.cfg.Issuer, keys, &oidc.Config{ClientID: a.cfg.ClientID, SkipExpiryCheck: true, Now: a.cfg.Now, SupportedSigningAlgs: algs})
}
