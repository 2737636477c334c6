package pipaauth_test

// The lean session (issue 16): the session cookie carries who is logged in
// and nothing more; the ID token lives in cookies sent to LogoutPath only,
// the kept tokens in cookies of their own, every side cookie bound to its
// session. Cookie mode and store mode, through the public API.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// cookieHeaderAt is the Cookie header b's jar sends to path of its app.
func (b *browser) cookieHeaderAt(path string) string {
	b.t.Helper()
	u, _ := url.Parse(b.app.url + path)
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		if ours(c.Name) {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "Cookie: " + strings.Join(parts, "; ")
}

// cookieNames lists the names of the cookies b sends to path.
func (b *browser) cookieNames(path string) []string {
	u, _ := url.Parse(b.app.url + path)
	var out []string
	for _, c := range b.jar.Cookies(u) {
		if ours(c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

// ours reports whether a cookie is the app's, not the provider's (which
// shares the loopback host).
func ours(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "__Host-"), "__Secure-"), "pipaauth")
}

// fingerprint stands for a token in a response body (the harness fails a
// test whose responses carry a token).
func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return fmt.Sprintf("%d:%x", len(tok), sum[:8])
}

// mux returns the ServeMux the app's server runs, to mount more routes.
func (a *app) mux() *http.ServeMux { return a.srv.Config.Handler.(*http.ServeMux) }

// mountToken mounts /token on a: the fingerprint of the access token Token returns, 409 for
// ErrNoTokens, 401 for ErrLoginRequired.
func (a *app) mountToken() {
	a.mux().Handle("/token", a.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := a.auth.Token(w, r)
		switch {
		case err == nil:
			io.WriteString(w, fingerprint(tok.AccessToken))
		case errors.Is(err, pipaauth.ErrNoTokens):
			http.Error(w, "no tokens", http.StatusConflict)
		default:
			http.Error(w, "token failed", http.StatusBadGateway)
		}
	})))
}

// tokenLog records the access and refresh tokens the provider issues,
// newest last.
type tokenLog struct {
	idTokens
	access, refresh idTokens
}

func (l *tokenLog) hook(resp map[string]any) {
	l.idTokens.hook(resp)
	l.access.hook(map[string]any{"id_token": resp["access_token"]})
	if rt, ok := resp["refresh_token"]; ok {
		l.refresh.hook(map[string]any{"id_token": rt})
	}
}

var leanModes = []struct {
	name  string
	store func(t *testing.T) func(*pipaauth.Config)
	bound int // the Cookie header of an ordinary page, at most
}{
	{"cookie", func(*testing.T) func(*pipaauth.Config) { return nil }, 512},
	{"revocable store", func(*testing.T) func(*pipaauth.Config) {
		return func(c *pipaauth.Config) { c.SessionStore = newMemRevocable() }
	}, 256},
	{"gorilla store", storeMode, 256},
}

// After a login with a 1.6 KB ID token the Cookie header of an ordinary
// page stays small; the ID token goes to the logout handler only, and
// logout sends it.
func TestLeanCookieHeader(t *testing.T) {
	t.Parallel()
	for _, mode := range leanModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h, ids, _ := logoutSetup(t, mode.store(t))
			h.setBehavior(pipatest.Behavior{RequireIDTokenHint: true, TokenHook: ids.hook, ClaimsHook: padIDToken(1600)})
			b := h.app.newBrowser(t)
			b.login("/private")
			if n := len(ids.last()); n < 1590 || n > 1610 {
				t.Fatalf("the ID token is %d bytes, want 1,600", n)
			}
			page := b.cookieHeaderAt("/private")
			t.Logf("%s: Cookie header of a page %d bytes, of the logout %d bytes", mode.name, len(page), len(b.cookieHeaderAt("/logout")))
			if len(page) > mode.bound {
				t.Errorf("Cookie header of a page: %d bytes (%v), want at most %d", len(page), b.cookieNames("/private"), mode.bound)
			}
			if strings.Contains(page, "-idt") {
				t.Errorf("a page gets the ID token cookie: %v", b.cookieNames("/private"))
			}
			if mode.name == "cookie" && !strings.Contains(b.cookieHeaderAt("/logout"), "__Secure-"+strings.TrimPrefix(sessionCookieName(pipaauth.Config{ClientID: clientID}), "__Host-")+"-idt0=") {
				t.Errorf("the logout path does not get the ID token cookie: %v", b.cookieNames("/logout"))
			}
			b.mustUser()
			q := query(t, b.post("/logout").location())
			if got := q.Get("id_token_hint"); got != ids.last() {
				t.Errorf("id_token_hint %.20q…, want the login's ID token", got)
			}
			b.mustBeLoggedOut()
			if names := b.cookieNames("/logout"); len(names) != 0 {
				t.Errorf("after logout the browser still sends %v to the logout path", names)
			}
		})
	}
}

// Logout sends id_token_hint for ID tokens of 2.3 KB in cookie mode, at
// the default and at a custom LogoutPath, and for 6.5 KB in store mode.
// A logout handler mounted away from LogoutPath gets no ID token (its
// cookie is not sent there) and still logs out.
func TestIDTokenHintSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prefix string
		edit   func(*testing.T) func(*pipaauth.Config)
		size   int
		hint   bool
	}{
		{"cookie, default LogoutPath", "", nil, 2300, true},
		{"cookie, custom LogoutPath", "/auth", func(*testing.T) func(*pipaauth.Config) {
			return func(c *pipaauth.Config) { c.LogoutPath = "/auth/logout" }
		}, 2300, true},
		{"cookie, 4.5 KB over two cookies", "", nil, 4500, true},
		{"cookie, handler away from LogoutPath", "", func(*testing.T) func(*pipaauth.Config) {
			return func(c *pipaauth.Config) { c.LogoutPath = "/signout" }
		}, 2300, false},
		{"revocable store", "", leanModes[1].store, 6500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var home string
			h := newHarness(t, setup{prefix: tt.prefix, configure: func(cfg *pipaauth.Config) {
				home = strings.TrimSuffix(cfg.RedirectURL, tt.prefix+"/callback") + "/"
				cfg.PostLogoutRedirectURL = home
				if tt.edit != nil {
					tt.edit(t)(cfg)
				}
			}})
			ids := &idTokens{}
			h.setBehavior(pipatest.Behavior{RequireIDTokenHint: true, TokenHook: ids.hook, ClaimsHook: padIDToken(tt.size)})
			b := h.app.newBrowser(t)
			b.finish(b.startLogin(tt.prefix + "/login"))
			if n := len(ids.last()); n < tt.size-8 || n > tt.size+8 {
				t.Fatalf("the ID token is %d bytes, want %d", n, tt.size)
			}
			b.mustUser()
			r := b.post(tt.prefix + "/logout")
			if r.status != http.StatusSeeOther {
				t.Fatalf("POST %s/logout: %d, want 303", tt.prefix, r.status)
			}
			q := query(t, r.location())
			if got := q.Get("id_token_hint") == ids.last(); got != tt.hint {
				t.Errorf("id_token_hint sent: %v, want %v", got, tt.hint)
			}
			if got := q.Get("post_logout_redirect_uri") == home; got != tt.hint {
				t.Errorf("post_logout_redirect_uri sent: %v, want %v", got, tt.hint)
			}
			b.mustBeLoggedOut()
		})
	}
}

// Tokens of the sizes Keycloak, Entra ID and Okta issue (access token
// 1,400 bytes, refresh token 900, ID token 1.6 KB) fit in cookie mode: the
// login succeeds, a refresh keeps the rotated refresh token, logout
// revokes it and sends the hint, and every cookie goes.
func TestLargeTokensInCookies(t *testing.T) {
	t.Parallel()
	for _, mode := range leanModes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h, _, _ := logoutSetup(t, func(c *pipaauth.Config) {
				c.KeepTokens = true
				if e := mode.store(t); e != nil {
					e(c)
				}
			})
			h.app.mountToken()
			// PiPA's clock moves with the application's: refreshed ID
			// tokens are checked for exp like the login's.
			h.provider.SetClock(h.clock.Now)
			log := &tokenLog{}
			h.setBehavior(pipatest.Behavior{RequireIDTokenHint: true, TokenHook: log.hook, ClaimsHook: padIDToken(1600),
				AccessTokenBytes: 1400, RefreshTokenBytes: 900})
			b := h.app.newBrowser(t)
			b.login("/private")
			if len(log.access.last()) != 1400 || len(log.refresh.last()) != 900 {
				t.Fatalf("tokens of %d and %d bytes, want 1,400 and 900", len(log.access.last()), len(log.refresh.last()))
			}
			for _, path := range []string{"/private", "/logout"} {
				n := len(b.cookieHeaderAt(path))
				t.Logf("%s: Cookie header of %s: %d bytes (%v)", mode.name, path, n, b.cookieNames(path))
				if n > 8190 {
					t.Errorf("Cookie header of %s: %d bytes, want at most 8,190", path, n)
				}
			}
			if r := b.get("/token"); r.status != http.StatusOK || r.body != fingerprint(log.access.last()) {
				t.Fatalf("GET /token: %d %q; want 200 with the 1,400-byte access token", r.status, r.body)
			}
			firstRT, loginIDToken := log.refresh.last(), log.idTokens.last()
			// Past the access token's hour: Token refreshes once.
			h.clock.Advance(time.Hour)
			if r := b.get("/token"); r.status != http.StatusOK || r.body != fingerprint(log.access.last()) || len(log.access.last()) != 1400 {
				t.Fatalf("GET /token after an hour: %d; want 200 with the refreshed access token", r.status)
			}
			rotated := log.refresh.last()
			if rotated == firstRT {
				t.Fatal("the provider did not rotate the refresh token")
			}
			// The rotated refresh token was kept: a second refresh spends
			// it (pipatest refuses a spent one and revokes the family).
			h.clock.Advance(time.Hour)
			if r := b.get("/token"); r.status != http.StatusOK || r.body != fingerprint(log.access.last()) {
				t.Fatalf("GET /token after two hours: %d %q; want 200 with a refreshed access token", r.status, r.body)
			}
			current := log.refresh.last()
			r := b.post("/logout")
			// The refreshes brought ID tokens of their own: logout sends
			// the newest (conformance issue, item 4).
			newest := log.idTokens.last()
			if newest == loginIDToken {
				t.Fatal("the provider's refreshes brought no new ID token")
			}
			if got := query(t, r.location()).Get("id_token_hint"); got == "" || got != newest {
				t.Errorf("logout sent id_token_hint %.20q…, want the newest refreshed ID token", got)
			}
			revs := h.provider.Revocations()
			if len(revs) == 0 || revs[len(revs)-1].Token != current || revs[len(revs)-1].Kind != "refresh_token" {
				t.Errorf("revocations %d, want the current refresh token revoked last", len(revs))
			}
			if names := b.cookieNames("/logout"); len(names) != 0 {
				t.Errorf("after logout the browser still sends %v", names)
			}
		})
	}
}

// Side cookies are bound to their session: mixes of two users' cookies
// never give one user the other's tokens or ID token, and a missing,
// corrupted or foreign side cookie means no tokens or no hint, never a
// failed request or a logout. Run with the tokens over two cookies, and
// with the ID token over two.
func TestSideCookiesBound(t *testing.T) {
	t.Parallel()
	for _, shape := range []struct {
		name                   string
		idToken, access, rfsh  int
		tokCookies, idtCookies int
	}{
		{"large tokens", 1600, 1400, 900, 2, 1},
		{"large ID token", 4500, 0, 0, 1, 2},
	} {
		t.Run(shape.name, func(t *testing.T) {
			t.Parallel()
			testSideCookiesBound(t, shape.idToken, shape.access, shape.rfsh, shape.tokCookies, shape.idtCookies)
		})
	}
}

func testSideCookiesBound(t *testing.T, idToken, access, rfsh, tokCookies, idtCookies int) {
	h, _, _ := logoutSetup(t, func(c *pipaauth.Config) { c.KeepTokens = true })
	h.app.mountToken()
	log := &tokenLog{}
	h.setBehavior(pipatest.Behavior{RequireIDTokenHint: true, TokenHook: log.hook, ClaimsHook: padIDToken(idToken),
		AccessTokenBytes: access, RefreshTokenBytes: rfsh})
	type jar struct {
		cookies map[string]string // at /logout: every cookie
		at, idt string
	}
	login := func(user string) jar {
		h.provider.SetUser(pipatest.User{Name: user, Email: user + "@example.com", EmailVerified: true, ShareEmail: true})
		b := h.app.newBrowser(t)
		b.login("/private")
		u, _ := url.Parse(h.app.url + "/logout")
		j := jar{cookies: map[string]string{}, at: log.access.last(), idt: log.idTokens.last()}
		for _, c := range b.jar.Cookies(u) {
			if ours(c.Name) {
				j.cookies[c.Name] = c.Value
			}
		}
		return j
	}
	alice, bob := login("alice"), login("bob")
	base := strings.TrimPrefix(sessionCookieName(pipaauth.Config{ClientID: clientID}), "__Host-")
	sess := "__Host-" + base
	var toks, idts []string
	for i := range tokCookies {
		toks = append(toks, fmt.Sprintf("__Host-%s-tok%d", base, i))
	}
	for i := range idtCookies {
		idts = append(idts, fmt.Sprintf("__Secure-%s-idt%d", base, i))
	}
	all := append(append([]string{sess}, toks...), idts...)
	if len(alice.cookies) != len(all) || len(bob.cookies) != len(all) {
		t.Fatalf("after login, alice has cookies %v, bob %v; want %v", keys(alice.cookies), keys(bob.cookies), all)
	}
	for _, name := range all {
		if alice.cookies[name] == "" || bob.cookies[name] == "" {
			t.Fatalf("after login, no %s cookie: alice %v", name, keys(alice.cookies))
		}
	}
	header := func(m map[string]string) string {
		var parts []string
		for _, name := range all {
			if v, ok := m[name]; ok {
				parts = append(parts, name+"="+v)
			}
		}
		return strings.Join(parts, "; ")
	}
	with := func(base jar, edit map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base.cookies {
			m[k] = v
		}
		for k, v := range edit {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	corrupt := func(v string) string {
		b := []byte(v)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	type mix struct {
		name       string
		cookies    map[string]string
		wantTokens bool // Token answers alice's access token; else 409
		wantHint   bool // logout sends alice's ID token; else none
	}
	tests := []mix{{"alice's own", with(alice, nil), true, true}}
	for _, name := range append(append([]string{}, toks...), idts...) {
		isTok := strings.Contains(name, "-tok")
		tests = append(tests,
			mix{"bob's " + name, with(alice, map[string]string{name: bob.cookies[name]}), !isTok, isTok},
			mix{"no " + name, with(alice, map[string]string{name: ""}), !isTok, isTok},
			mix{name + " corrupted", with(alice, map[string]string{name: corrupt(alice.cookies[name])}), !isTok, isTok},
			mix{name + " twice, bob's first", with(alice, map[string]string{name: bob.cookies[name] + "; " + name + "=" + alice.cookies[name]}), true, true},
		)
	}
	bobs := func(names []string) map[string]string {
		m := map[string]string{}
		for _, n := range names {
			m[n] = bob.cookies[n]
		}
		return m
	}
	tests = append(tests,
		mix{"bob's token cookies", with(alice, bobs(toks)), false, true},
		mix{"bob's ID token cookies", with(alice, bobs(idts)), true, false},
		mix{"bob's session cookie with alice's side cookies", with(alice, map[string]string{sess: bob.cookies[sess]}), false, false},
		mix{"an ID token cookie in the token cookie's place", with(alice, map[string]string{toks[0]: alice.cookies[idts[0]]}), false, true},
	)
	if len(toks) == 2 {
		tests = append(tests, mix{"token cookies swapped", with(alice, map[string]string{toks[0]: alice.cookies[toks[1]], toks[1]: alice.cookies[toks[0]]}), false, true})
	}
	if len(idts) == 2 {
		tests = append(tests, mix{"ID token cookies swapped", with(alice, map[string]string{idts[0]: alice.cookies[idts[1]], idts[1]: alice.cookies[idts[0]]}), true, false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			c := header(tt.cookies)
			wantUser := "alice@example.com"
			if tt.cookies[sess] == bob.cookies[sess] {
				wantUser = "bob@example.com"
			}
			if r := b.get("/private", "Cookie", c, "Accept", "application/json"); r.status != http.StatusOK || !strings.Contains(r.body, wantUser) {
				t.Fatalf("GET /private: %d %q, want 200 as %s", r.status, r.body, wantUser)
			}
			r := b.get("/token", "Cookie", c)
			if other := map[string]string{"alice@example.com": bob.at, "bob@example.com": alice.at}[wantUser]; r.body == fingerprint(other) {
				t.Fatal("Token gave one user the other's access token")
			}
			switch {
			case tt.wantTokens && (r.status != http.StatusOK || r.body != fingerprint(alice.at)):
				t.Errorf("GET /token: %d, want 200 with alice's access token", r.status)
			case !tt.wantTokens && r.status != http.StatusConflict:
				t.Errorf("GET /token: %d %q, want 409 (no tokens)", r.status, r.body)
			}
			if r := b.get("/private", "Cookie", c, "Accept", "application/json"); r.status != http.StatusOK {
				t.Errorf("after Token, GET /private: %d, want 200: the session stays", r.status)
			}
			out := b.post("/logout", "Cookie", c)
			if out.status != http.StatusSeeOther {
				t.Fatalf("POST /logout: %d, want 303", out.status)
			}
			hint := query(t, out.location()).Get("id_token_hint")
			if other := map[string]string{"alice@example.com": bob.idt, "bob@example.com": alice.idt}[wantUser]; hint == other {
				t.Fatal("logout for one user sent the other's ID token")
			}
			if got := hint == alice.idt; got != tt.wantHint {
				t.Errorf("logout sent alice's ID token: %v, want %v (hint %.20q…)", got, tt.wantHint, hint)
			}
		})
	}
	// A corrupted session cookie is no session: the side cookies alone
	// log nobody in, and nothing fails.
	t.Run("session cookie corrupted", func(t *testing.T) {
		b := h.app.newBrowser(t)
		c := header(with(alice, map[string]string{sess: corrupt(alice.cookies[sess])}))
		if r := b.get("/private", "Cookie", c, "Accept", "application/json"); r.status != http.StatusUnauthorized {
			t.Errorf("GET /private: %d, want 401", r.status)
		}
		if r := b.get("/token", "Cookie", c, "Accept", "application/json"); r.status != http.StatusUnauthorized {
			t.Errorf("GET /token: %d, want 401", r.status)
		}
		out := b.post("/logout", "Cookie", c)
		if out.status != http.StatusSeeOther || query(t, out.location()).Get("id_token_hint") != "" {
			t.Errorf("POST /logout: %d to %.60q, want 303 without a hint", out.status, out.location())
		}
	})
	// An older login's side cookies (another handle) are stale: a new login
	// of the same browser makes them useless.
	t.Run("stale after a new login", func(t *testing.T) {
		again := login("alice")
		old := map[string]string{}
		for _, n := range all[1:] {
			old[n] = alice.cookies[n]
		}
		c := header(with(again, old))
		b := h.app.newBrowser(t)
		if r := b.get("/token", "Cookie", c); r.status != http.StatusConflict {
			t.Errorf("GET /token with the previous login's token cookies: %d, want 409", r.status)
		}
		if hint := query(t, b.post("/logout", "Cookie", c).location()).Get("id_token_hint"); hint != "" {
			t.Errorf("logout with the previous login's ID token cookies sent a hint")
		}
	})
}
