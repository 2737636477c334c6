package pipaauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// BenchmarkLoginHighAssurance times a whole login per iteration, as
// BenchmarkCallback does, plainly (client secret, front-channel request,
// Bearer tokens) and with each high-assurance feature: private_key_jwt
// (an ES256 assertion per token request), PAR (one more round trip, with
// its own assertion), DPoP (a P-256 key per login, a proof at the token
// endpoint) and all three. Compare each with "plain" from the same run:
// the provider's work (verifying assertions and proofs) is included.
func BenchmarkLoginHighAssurance(b *testing.B) {
	for _, tc := range []struct {
		name           string
		key, par, dpop bool
	}{
		{"plain", false, false, false},
		{"private_key_jwt", true, false, false},
		{"par", false, true, false},
		{"dpop", false, false, true},
		{"par+dpop+private_key_jwt", true, true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			provider := pipatest.NewServer()
			b.Cleanup(provider.Close)
			key := faKey(b, "es256")
			provider.RegisterClient(pipatest.Client{ID: faClientID, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1"}}}})
			app := newTestApp(b, provider, func(c *pipaauth.Config) {
				if tc.key {
					c.ClientID, c.ClientSecret, c.ClientAssertionKey = faClientID, "", key
				}
				c.PushedAuthorization, c.DPoP, c.KeepTokens = tc.par, tc.dpop, true
			})
			benchLogins(b, app)
		})
	}
}

// BenchmarkLoginHighAssuranceRatio alternates a plain login and one with
// PAR, DPoP and private_key_jwt in every iteration, and reports the time of
// the second over the first ("x-plain"): a ratio that a busy machine's
// drifting load skews less than two separate runs.
func BenchmarkLoginHighAssuranceRatio(b *testing.B) {
	provider := pipatest.NewServer()
	b.Cleanup(provider.Close)
	key := faKey(b, "es256")
	provider.RegisterClient(pipatest.Client{ID: faClientID, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1"}}}})
	plain := newTestApp(b, provider, func(c *pipaauth.Config) { c.KeepTokens = true })
	fapi := newTestApp(b, provider, func(c *pipaauth.Config) {
		c.ClientID, c.ClientSecret, c.ClientAssertionKey = faClientID, "", key
		c.PushedAuthorization, c.DPoP, c.KeepTokens = true, true, true
	})
	var tPlain, tFAPI time.Duration
	for b.Loop() {
		start := time.Now()
		benchLogin(b, plain)
		mid := time.Now()
		benchLogin(b, fapi)
		tPlain, tFAPI = tPlain+mid.Sub(start), tFAPI+time.Since(mid)
	}
	b.ReportMetric(float64(tFAPI)/float64(tPlain), "x-plain")
}

// benchLogins runs one login per iteration.
func benchLogins(b *testing.B, app *testApp) {
	b.ReportAllocs()
	for b.Loop() {
		benchLogin(b, app)
	}
}

// benchLogin runs one login: login start, the provider's authorization
// endpoint, the callback.
func benchLogin(b *testing.B, app *testApp) {
	login, callback := app.auth.LoginHandler(), app.auth.CallbackHandler()
	provider := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	{
		rec := httptest.NewRecorder()
		login.ServeHTTP(rec, httptest.NewRequest("GET", app.srv.URL+"/login?return_to=%2Fhello", nil))
		res := rec.Result()
		if res.StatusCode != http.StatusFound || len(res.Cookies()) != 1 {
			b.Fatalf("login: status %d, %d cookies; want 302 and an attempt cookie", res.StatusCode, len(res.Cookies()))
		}
		state := res.Cookies()[0]
		resp, err := provider.Get(res.Header.Get("Location"))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		back := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.Contains(back, "code=") {
			b.Fatalf("authorize: status %d, Location %q; want 302 with a code", resp.StatusCode, back)
		}
		req := httptest.NewRequest("GET", back, nil)
		req.AddCookie(state)
		rec = httptest.NewRecorder()
		callback.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/hello" {
			b.Fatalf("callback: status %d, Location %q, body %q; want 303 to /hello", rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	}
}
