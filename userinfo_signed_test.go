package pipaauth_test

// Signed UserInfo answers (application/jwt, OpenID Connect Core 5.3.2) are
// checked with the ID tokens' verifier: PiPA's filtered, throttled key set,
// SigningAlgs, iss and aud (security review).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// signedUserInfo, in front of keyProvider, answers UserInfo as a JWS of
// pipatest's JSON answer plus iss and aud, signed ES256 with kp's key
// (kid ecKID), or as edit says.
type signedUserInfo struct {
	kp     *keyProvider
	signed atomic.Int64 // signed answers given
	plain  atomic.Bool  // answer JSON as pipatest does
	mu     sync.Mutex
	edit   func(claims map[string]any) // changes the claims before signing
	key    *ecdsa.PrivateKey           // signs instead of kp's key
	kid    string                      // instead of ecKID
}

func (s *signedUserInfo) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.kp.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/userinfo") || resp.StatusCode != http.StatusOK || s.plain.Load() {
		return resp, err
	}
	defer resp.Body.Close()
	var claims map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
		return nil, err
	}
	iss := r.URL.Scheme + "://" + r.URL.Host
	claims["iss"], claims["aud"] = iss, clientID
	s.mu.Lock()
	edit, key, kid := s.edit, s.key, s.kid
	s.mu.Unlock()
	if edit != nil {
		edit(claims)
	}
	payload, _ := json.Marshal(claims)
	var jwt string
	if key == nil {
		jwt = s.kp.signES256(payload, "JWT")
	} else {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return nil, err
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			return nil, err
		}
		jwt, _ = jws.CompactSerialize()
	}
	s.signed.Add(1)
	out := answer(r, http.StatusOK, []byte(jwt))
	out.Header.Set("Content-Type", "application/jwt; charset=utf-8")
	return out, nil
}

func (s *signedUserInfo) set(edit func(map[string]any), key *ecdsa.PrivateKey, kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.edit, s.key, s.kid = edit, key, kid
}

// A login whose email comes only from a signed UserInfo answer: it works
// with a JWKS holding keys the package cannot read (one fetch, the key
// set's), and is refused when the answer is signed with an algorithm
// SigningAlgs does not name, by another key, or names another iss or aud;
// a key that cannot be had yet is the keys_unavailable failure of an ID
// token.
func TestSignedUserInfoUsesTheFilteredKeySet(t *testing.T) {
	t.Parallel()
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	both := func(doc map[string]any) { doc["id_token_signing_alg_values_supported"] = []string{"RS256", "ES256"} }
	for _, tt := range []struct {
		name   string
		algs   []string
		edit   func(map[string]any)
		key    *ecdsa.PrivateKey
		kid    string
		status int           // 0: the login succeeds
		want   error         // with status: what the error wraps
		reason string        // with status: the login_failed event's reason
		extra  time.Duration // ExchangeTimeout, 0 for the harness's default
	}{
		{name: "signed ES256, JWKS with unreadable keys", algs: []string{"RS256", "ES256"}},
		{name: "SigningAlgs pinned to RS256", algs: []string{"RS256"}, status: http.StatusBadRequest, want: pipaauth.ErrInvalidToken, reason: pipaauth.ReasonUserInfoInvalid},
		{name: "another issuer", algs: []string{"RS256", "ES256"}, edit: func(c map[string]any) { c["iss"] = "https://attacker.example" },
			status: http.StatusBadRequest, want: pipaauth.ErrInvalidToken, reason: pipaauth.ReasonUserInfoInvalid},
		{name: "no issuer", algs: []string{"RS256", "ES256"}, edit: func(c map[string]any) { delete(c, "iss") },
			status: http.StatusBadRequest, want: pipaauth.ErrInvalidToken, reason: pipaauth.ReasonUserInfoInvalid},
		{name: "another audience", algs: []string{"RS256", "ES256"}, edit: func(c map[string]any) { c["aud"] = "another-client" },
			status: http.StatusBadRequest, want: pipaauth.ErrInvalidToken, reason: pipaauth.ReasonUserInfoInvalid},
		{name: "PiPA's kid, another key", algs: []string{"RS256", "ES256"}, key: other, kid: ecKID,
			status: http.StatusBadRequest, want: pipaauth.ErrInvalidToken, reason: pipaauth.ReasonUserInfoInvalid},
		{name: "unknown kid within the interval", algs: []string{"RS256", "ES256"}, key: other, kid: "rotated", extra: 2 * time.Second,
			status: http.StatusServiceUnavailable, want: pipaauth.ErrExchange, reason: pipaauth.ReasonKeysUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kp := newKeyProvider(t)
			su := &signedUserInfo{kp: kp}
			su.set(tt.edit, tt.key, tt.kid)
			events := &eventLog{}
			h := newHarness(t, setup{discovery: both, configure: func(cfg *pipaauth.Config) {
				kp.wrap(cfg)
				hc := *cfg.HTTPClient
				hc.Transport = su
				cfg.HTTPClient = &hc
				cfg.SigningAlgs = tt.algs
				cfg.OnEvent = events.record
				if tt.extra > 0 {
					cfg.ExchangeTimeout = tt.extra
				}
			}})
			kp.set(jwksNormal, append(unreadableKeys(t), kp.ecJWK())...)
			h.setBehavior(pipatest.Behavior{EmailOnlyAtUserInfo: true})
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			if su.signed.Load() != 1 {
				t.Fatalf("%d signed UserInfo answers, want 1", su.signed.Load())
			}
			if tt.status == 0 {
				if r.status != http.StatusSeeOther {
					t.Fatalf("login: %d, want 303; errors %v", r.status, h.app.takeErrors())
				}
				if u := b.mustUser(); u.Email != "alice@example.com" {
					t.Errorf("email %q, want alice's from the signed UserInfo answer", u.Email)
				}
				if n := kp.fetches.Load(); n != 1 {
					t.Errorf("%d JWKS fetches, want 1 (the key set's, shared by the ID token and UserInfo)", n)
				}
				return
			}
			expectFailure(t, h, r, tt.status, tt.want, -1)
			b.mustBeLoggedOut()
			var reasons []string
			for _, e := range events.take() {
				if e.Kind == pipaauth.EventLoginFailed {
					reasons = append(reasons, e.Reason)
				}
			}
			if len(reasons) != 1 || reasons[0] != tt.reason {
				t.Errorf("login_failed reasons %q, want [%q]", reasons, tt.reason)
			}
		})
	}
}

// A JSON UserInfo answer over 1 MiB, or one that is not a JSON object, is
// an unreadable answer (502).
func TestUserInfoAnswerShape(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		body string
	}{
		{"over 1 MiB", `{"sub":"x","pad":"` + strings.Repeat("p", 1<<20) + `"}`},
		{"an array", `[{"sub":"x"}]`},
		{"null", `null`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
				base := cfg.HTTPClient.Transport
				if base == nil {
					base = http.DefaultTransport
				}
				hc := *cfg.HTTPClient
				hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if !strings.HasSuffix(r.URL.Path, "/userinfo") {
						return base.RoundTrip(r)
					}
					return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{"Content-Type": {"application/json"}},
						Body: io.NopCloser(strings.NewReader(tt.body)), Request: r, ProtoMajor: 1, ProtoMinor: 1}, nil
				})
				cfg.HTTPClient = &hc
			}})
			h.setBehavior(pipatest.Behavior{EmailOnlyAtUserInfo: true})
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			expectFailure(t, h, r, http.StatusBadGateway, pipaauth.ErrExchange, -1)
		})
	}
}

// At a refresh, a signed UserInfo answer that does not pass verification
// (here: an algorithm SigningAlgs does not name) fails like any other
// UserInfo failure: the session stays, the claims it was asked for are
// cleared, and a warning is logged. Only another sub ends the session.
func TestSignedUserInfoRefusedAtRefresh(t *testing.T) {
	t.Parallel()
	kp := newKeyProvider(t)
	su := &signedUserInfo{kp: kp}
	su.plain.Store(true)
	ca := newClaimsApp(t, nil, []string{"roles"}, alice(nil, map[string]any{"roles": "reader"}), nil, func(c *pipaauth.Config) {
		kp.wrap(c)
		hc := *c.HTTPClient
		hc.Transport = su
		c.HTTPClient = &hc
		c.SigningAlgs = []string{"RS256"}
	})
	ca.login(t)
	if got, want := jsonOf(t, ca.claims(t, "roles")), `{"roles":"reader"}`; got != want {
		t.Fatalf("claims after the login = %s, want %s", got, want)
	}
	su.plain.Store(false) // ES256 from now on
	ca.events.take()
	ca.refresh(t)
	if su.signed.Load() != 1 {
		t.Fatalf("%d signed UserInfo answers, want 1", su.signed.Load())
	}
	if got := jsonOf(t, ca.claims(t, "roles")); got != `{}` {
		t.Errorf("claims after a refresh whose signed UserInfo was refused = %s, want {}", got)
	}
	if !strings.Contains(ca.logs.String(), "UserInfo failed at a refresh") {
		t.Errorf("no warning in the log:\n%s", ca.logs.String())
	}
}
