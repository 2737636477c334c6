package pipaauth_test

// Full-flow tests of logout: the end-session redirect and cross-site
// refusals; and (issue 8) id_token_hint on the end-session redirect, what
// happens without an ID token, token revocation (RFC 7009), and the
// provider's own session ending.

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// idTokens records the ID tokens the provider issues, newest last.
type idTokens struct {
	mu  sync.Mutex
	all []string
}

func (c *idTokens) hook(resp map[string]any) {
	if s, ok := resp["id_token"].(string); ok {
		c.mu.Lock()
		c.all = append(c.all, s)
		c.mu.Unlock()
	}
}

func (c *idTokens) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.all) == 0 {
		return ""
	}
	return c.all[len(c.all)-1]
}

// storeMode configures a filesystem SessionStore (server-side sessions).
func storeMode(t *testing.T) func(*pipaauth.Config) {
	return func(cfg *pipaauth.Config) {
		cfg.SessionStore = sessions.NewFilesystemStore(t.TempDir(), newKeys()[0])
	}
}

// logoutSetup is a harness whose app sends PostLogoutRedirectURL (the app's
// home) and whose provider refuses post_logout_redirect_uri without
// id_token_hint, as Ory Hydra does.
func logoutSetup(t *testing.T, edit func(*pipaauth.Config)) (*harness, *idTokens, string) {
	t.Helper()
	var home string
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		home = strings.TrimSuffix(cfg.RedirectURL, "/callback") + "/"
		cfg.PostLogoutRedirectURL = home
		if edit != nil {
			edit(cfg)
		}
	}})
	ids := &idTokens{}
	h.setBehavior(pipatest.Behavior{RequireIDTokenHint: true, TokenHook: ids.hook})
	return h, ids, home
}

func TestLogoutSendsIDTokenHint(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		edit func(*testing.T) func(*pipaauth.Config)
	}{
		{"cookie", func(*testing.T) func(*pipaauth.Config) { return nil }},
		{"store", storeMode},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h, ids, home := logoutSetup(t, mode.edit(t))
			b := h.app.newBrowser(t)
			b.login("/private")
			if n := h.provider.ActiveSessions("alice"); n != 1 {
				t.Fatalf("alice has %d sessions at PiPA after login, want 1", n)
			}
			r := b.post("/logout")
			if r.status != http.StatusSeeOther {
				t.Fatalf("POST /logout: %d, want 303", r.status)
			}
			q := query(t, r.location())
			if got, want := q.Get("id_token_hint"), ids.last(); got == "" || got != want {
				t.Errorf("id_token_hint = %.20q…, want the login's ID token %.20q…", got, want)
			}
			if q.Get("client_id") != clientID || q.Get("post_logout_redirect_uri") != home {
				t.Errorf("end session query = %v, want client_id %q and post_logout_redirect_uri %q", q, clientID, home)
			}
			if q.Has("state") {
				t.Errorf("end session query has a state: %v", q)
			}
			b.mustBeLoggedOut()
			// A strict PiPA accepts it, ends its session and sends the
			// browser home.
			end := b.get(r.location())
			if end.status != http.StatusFound || end.location() != home {
				t.Errorf("end session: %d to %q, want 302 to %q\n%s", end.status, end.location(), home, end.body)
			}
			if n := h.provider.ActiveSessions("alice"); n != 0 {
				t.Errorf("alice has %d sessions at PiPA after logout, want 0", n)
			}
		})
	}
}

func TestLogoutWithoutIDToken(t *testing.T) {
	t.Parallel()
	// Without the openid scope there is no ID token: post_logout_redirect_uri
	// would make a strict PiPA refuse the logout, so it is not sent.
	h, _, _ := logoutSetup(t, func(cfg *pipaauth.Config) { cfg.Scopes = []string{"email"} })
	b := h.app.newBrowser(t)
	b.login("/private")
	r := b.post("/logout")
	q := query(t, r.location())
	if r.status != http.StatusSeeOther || q.Get("client_id") != clientID || q.Has("post_logout_redirect_uri") || q.Has("id_token_hint") {
		t.Fatalf("POST /logout: %d to %q, want 303 to the end-session endpoint with client_id only", r.status, r.location())
	}
	end := b.get(r.location())
	if end.status != http.StatusOK || !strings.Contains(end.body, "signed out") {
		t.Errorf("end session: %d, want PiPA's signed-out page\n%s", end.status, end.body)
	}
	if n := h.provider.ActiveSessions("alice"); n != 0 {
		t.Errorf("alice has %d sessions at PiPA after logout, want 0", n)
	}
}

func TestLogoutEndsProviderSession(t *testing.T) {
	t.Parallel()
	h, _, _ := logoutSetup(t, nil)
	b := h.app.newBrowser(t)
	b.login("/private") // PiPA signs alice in and remembers the browser
	h.provider.SetInteractive(true)
	// While PiPA's session lives, a new login goes straight through...
	if r := b.get(b.startLogin("/login")); r.status != http.StatusFound {
		t.Fatalf("login with a live PiPA session: %d, want 302 straight back (single sign-on)", r.status)
	}
	// ...and after a logout PiPA asks for the user again.
	r := b.post("/logout")
	if end := b.get(r.location()); end.status != http.StatusFound {
		t.Fatalf("end session: %d, want 302\n%s", end.status, end.body)
	}
	if r := b.get(b.startLogin("/private")); r.status != http.StatusOK || !strings.Contains(r.body, "Sign in with PiPA") {
		t.Errorf("login after logout: %d, want PiPA's sign-in page", r.status)
	}
}

func TestLogoutRevokesRefreshToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		methods  []string
		wantAuth string
	}{
		{"client_secret_post", nil, "client_secret_post"},
		{"client_secret_basic", []string{"client_secret_basic"}, "client_secret_basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rts []string
			var mu sync.Mutex
			h := newHarness(t, setup{
				discovery: func(doc map[string]any) {
					if tt.methods != nil {
						doc["token_endpoint_auth_methods_supported"] = tt.methods
						doc["revocation_endpoint_auth_methods_supported"] = tt.methods
					}
				},
				configure: func(cfg *pipaauth.Config) { cfg.KeepTokens = true },
			})
			h.setBehavior(pipatest.Behavior{TokenHook: func(resp map[string]any) {
				mu.Lock()
				rts = append(rts, resp["refresh_token"].(string))
				mu.Unlock()
			}})
			b := h.app.newBrowser(t)
			b.login("/private")
			if r := b.post("/logout"); r.status != http.StatusSeeOther {
				t.Fatalf("POST /logout: %d, want 303", r.status)
			}
			revs := h.provider.Revocations()
			if len(revs) != 1 {
				t.Fatalf("revocations = %+v, want one", revs)
			}
			mu.Lock()
			rt := rts[len(rts)-1]
			mu.Unlock()
			if got := revs[0]; got.Token != rt || got.TokenTypeHint != "refresh_token" || got.Kind != "refresh_token" || got.ClientAuth != tt.wantAuth {
				t.Errorf("revocation = {hint %q, kind %q, auth %q, the refresh token: %v}, want the refresh token with hint refresh_token by %s",
					got.TokenTypeHint, got.Kind, got.ClientAuth, got.Token == rt, tt.wantAuth)
			}
		})
	}
}

func TestLogoutRevokesNothingWithoutTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	b.login("/private")
	b.post("/logout")
	if revs := h.provider.Revocations(); len(revs) != 0 {
		t.Errorf("revocations without KeepTokens = %+v, want none", revs)
	}
}

func TestLogoutWhenRevocationFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    pipatest.Behavior
	}{
		{"500", pipatest.Behavior{RevocationStatus: http.StatusInternalServerError}},
		{"slow", pipatest.Behavior{RevocationDelay: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.KeepTokens = true }})
			b := h.app.newBrowser(t)
			b.login("/private")
			h.setBehavior(tt.b)
			start := time.Now()
			r := b.post("/logout")
			if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), h.provider.URL+"/end_session?") {
				t.Fatalf("POST /logout: %d to %q, want 303 to the end-session endpoint", r.status, r.location())
			}
			if c := r.setCookie(h.app.cookieName); c == nil || c.MaxAge >= 0 {
				t.Errorf("POST /logout sets %v, want the session cookie cleared", c)
			}
			if d := time.Since(start); d > pipaauth.RevocationTimeout+5*time.Second {
				t.Errorf("logout took %s with a slow revocation endpoint", d)
			}
			b.mustBeLoggedOut()
			if !strings.Contains(h.logs.String(), "token revocation at logout") {
				t.Errorf("the failed revocation is not logged:\n%s", h.logs.String())
			}
		})
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	var postLogout string
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		postLogout = strings.TrimSuffix(cfg.RedirectURL, "/callback") + "/"
		cfg.PostLogoutRedirectURL = postLogout
	}})
	b := h.app.newBrowser(t)
	b.login("/private")

	r := b.get("/logout")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
		t.Errorf("GET /logout: %d with Allow %q, want 405 with Allow POST", r.status, r.header.Get("Allow"))
	}
	b.mustUser()

	r = b.post("/logout")
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST /logout: %d, want 303", r.status)
	}
	if c := r.setCookie(h.app.cookieName); c == nil || c.MaxAge >= 0 {
		t.Errorf("POST /logout sets %v, want the session cookie cleared (Max-Age<0)", c)
	}
	u, err := url.Parse(r.location())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, h.provider.URL+"/end_session"; got != want {
		t.Errorf("logout redirects to %q, want %q", got, want)
	}
	q := u.Query()
	if q.Get("client_id") != clientID || q.Get("post_logout_redirect_uri") != postLogout {
		t.Errorf("end session query = %v, want client_id %q and post_logout_redirect_uri %q", q, clientID, postLogout)
	}
	b.mustBeLoggedOut()
	// PiPA accepts the request and sends the browser back.
	end := b.get(r.location())
	if end.status != http.StatusFound || end.location() != postLogout {
		t.Errorf("end session: %d to %q, want 302 to %q", end.status, end.location(), postLogout)
	}
}

func TestLogoutWithoutEndSessionEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{discovery: func(doc map[string]any) { delete(doc, "end_session_endpoint") }})
	b := h.app.newBrowser(t)
	b.login("/private")
	r := b.post("/logout")
	if r.status != http.StatusSeeOther || r.location() != "/" {
		t.Errorf("POST /logout: %d to %q, want 303 to /", r.status, r.location())
	}
	if c := r.setCookie(h.app.cookieName); c == nil || c.MaxAge >= 0 {
		t.Errorf("POST /logout sets %v, want the session cookie cleared", c)
	}
	b.mustBeLoggedOut()
}

func TestLogoutWithoutPostLogoutRedirectURL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	b.login("/private")
	r := b.post("/logout")
	q := query(t, r.location())
	if r.status != http.StatusSeeOther || q.Get("client_id") != clientID || q.Has("post_logout_redirect_uri") {
		t.Errorf("POST /logout: %d to %q, want 303 to the end session endpoint with client_id only", r.status, r.location())
	}
}

func TestLogoutRefusesCrossSiteRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	b.login("/private")
	for _, header := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "https://evil.example"},
		{"Origin", "null"},
	} {
		r := b.post("/logout", header...)
		if r.status != http.StatusForbidden {
			t.Errorf("POST /logout with %s: %s: %d, want 403", header[0], header[1], r.status)
		}
		if c := r.setCookie(h.app.cookieName); c != nil {
			t.Errorf("POST /logout with %s: %s sets %v, want no cookie change", header[0], header[1], c)
		}
		b.mustUser()
	}
	// The page's own form still works.
	if r := b.post("/logout", "Sec-Fetch-Site", "same-origin", "Origin", h.app.url); r.status != http.StatusSeeOther {
		t.Errorf("same-origin POST /logout: %d, want 303", r.status)
	}
	b.mustBeLoggedOut()
}
