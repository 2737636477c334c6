package pipaauth_test

import (
	"fmt"

	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// claimsBenchCookie logs alice in with names kept and returns her session
// cookie. She has a name and ten groups.
func claimsBenchCookie(b *testing.B, names []string) (*pipaauth.Auth, *http.Cookie) {
	b.Helper()
	provider := pipatest.NewServer()
	b.Cleanup(provider.Close)
	groups := make([]string, 10)
	for i := range groups {
		groups[i] = fmt.Sprintf("group-%02d", i)
	}
	provider.SetUser(pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true,
		Claims: map[string]any{"name": "Alice Liddell", "groups": groups}})
	pa := newTestApp(b, provider, func(c *pipaauth.Config) { c.Claims = names })
	pa.mux.Handle("/login", pa.auth.LoginHandler())
	pa.mux.Handle("/callback", pa.auth.CallbackHandler())
	pa.mux.Handle("/", pa.auth.RequireLogin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(pa.srv.URL + "/")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(pa.srv.URL)
	for _, c := range jar.Cookies(u) {
		if c.Name == plainCookieName {
			return pa.auth, c
		}
	}
	b.Fatalf("no session cookie after the login (status %d)", resp.StatusCode)
	return nil, nil
}

// BenchmarkClaims measures the guard on a session without claims
// (Config.Claims empty) and on one keeping name and ten groups, beside the
// bare handler in the same run; cookie-bytes is the length of the Cookie
// header the browser sends. "allow-claim" is RequireUser with
// AllowClaim("groups", ...), which decodes the claims on each request.
func BenchmarkClaims(b *testing.B) {
	var seen pipaauth.User
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = pipaauth.UserFromContext(r.Context())
		w.WriteHeader(http.StatusOK)
	})
	run := func(b *testing.B, h http.Handler, c *http.Cookie, wantUser bool) {
		r := httptest.NewRequest("GET", "/private", nil)
		r.Header.Set("Cookie", c.Name+"="+c.Value)
		w := &benchWriter{h: http.Header{}}
		seen = pipaauth.User{}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
		}
		b.ReportMetric(float64(len(r.Header.Get("Cookie"))), "cookie-bytes")
		if w.code != http.StatusOK || (seen.Email == "alice@example.com") != wantUser {
			b.Fatalf("last request: status %d, user %q", w.code, seen.Email)
		}
	}
	plain, plainCookie := claimsBenchCookie(b, nil)
	kept, keptCookie := claimsBenchCookie(b, []string{"name", "groups"})
	b.Run("bare", func(b *testing.B) { run(b, handler, plainCookie, false) })
	b.Run("no-claims", func(b *testing.B) { run(b, plain.RequireLogin(handler), plainCookie, true) })
	b.Run("name-10-groups", func(b *testing.B) { run(b, kept.RequireLogin(handler), keptCookie, true) })
	b.Run("name-10-groups-allow-claim", func(b *testing.B) {
		run(b, kept.RequireUser(pipaauth.AllowClaim("groups", "group-09"))(handler), keptCookie, true)
	})
}
