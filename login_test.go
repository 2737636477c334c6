package pipaauth_test

// Full-flow tests of logging in (see harness_test.go for the harness): how
// RequireLogin starts a login or refuses a non-navigation, the authorization
// request, a successful callback, pending and concurrent logins, and the
// handlers mounted under a prefix or over plain HTTP.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestRequireLoginRedirectsNavigation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	var states, nonces []string
	for range 2 {
		r := b.get("/private?x=1")
		if r.status != http.StatusFound {
			t.Fatalf("GET /private: %d, want 302", r.status)
		}
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want %q", got, "no-store")
		}
		if r.setCookie(h.app.cookieName) != nil {
			t.Errorf("the login redirect sets the session cookie %s: a start must write only its attempt cookie", h.app.cookieName)
		}
		if c := r.attemptCookies(h.app.cookieName); len(c) != 1 || !c[0].HttpOnly || !c[0].Secure || c[0].SameSite != http.SameSiteLaxMode ||
			c[0].Path != "/" || c[0].MaxAge != 600 || c[0].Domain != "" {
			t.Errorf("the login redirect sets attempt cookies %+v, want one HttpOnly, Secure, SameSite=Lax cookie for / with Max-Age=600", c)
		}
		u, err := url.Parse(r.location())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := u.Scheme+"://"+u.Host+u.Path, h.provider.URL+"/authorize"; got != want {
			t.Errorf("redirect to %q, want %q", got, want)
		}
		q := u.Query()
		for k, v := range q {
			if len(v) != 1 {
				t.Errorf("parameter %s given %d times", k, len(v))
			}
		}
		for k, want := range map[string]string{
			"response_type":         "code",
			"client_id":             clientID,
			"redirect_uri":          h.app.cfg.RedirectURL,
			"scope":                 "openid email",
			"code_challenge_method": "S256",
		} {
			if got := q.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		for _, k := range []string{"state", "nonce"} {
			// The state is random "." start host and return path "." mac
			// (callback/hoststate.go): its first part is the random one.
			if v, _, _ := strings.Cut(q.Get(k), "."); !randomish.MatchString(v) {
				t.Errorf("%s = %q, want at least 22 base64url characters first", k, q.Get(k))
			}
		}
		if v := q.Get("code_challenge"); !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(v) {
			t.Errorf("code_challenge = %q, want a base64url SHA-256 hash", v)
		}
		if q.Get("state") == q.Get("nonce") {
			t.Errorf("state and nonce are both %q", q.Get("state"))
		}
		states = append(states, q.Get("state"))
		nonces = append(nonces, q.Get("nonce"))
	}
	if states[0] == states[1] {
		t.Errorf("two logins share the state %q", states[0])
	}
	if nonces[0] == nonces[1] {
		t.Errorf("two logins share the nonce %q", nonces[0])
	}
}

func TestLoginWithoutPKCEWhenNotAdvertised(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{discovery: func(doc map[string]any) { delete(doc, "code_challenge_methods_supported") }})
	b := h.app.newBrowser(t)
	auth := b.startLogin("/private")
	q := query(t, auth)
	if q.Has("code_challenge") || q.Has("code_challenge_method") {
		t.Errorf("authorization request carries code_challenge %q, method %q; want none", q.Get("code_challenge"), q.Get("code_challenge_method"))
	}
	if r := b.finish(auth); r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
	}
	if tr, _ := h.provider.LastTokenRequest(); tr.HasVerifier {
		t.Errorf("token request carries a code_verifier without a code_challenge")
	}
}

func TestRequireLoginAnswersNonNavigationsWith401(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		name   string
		method string
		header []string
	}{
		{"POST", http.MethodPost, nil},
		{"PUT", http.MethodPut, nil},
		{"DELETE", http.MethodDelete, nil},
		{"PATCH", http.MethodPatch, nil},
		{"GET asking for JSON", http.MethodGet, []string{"Accept", "application/json"}},
		{"GET from XMLHttpRequest", http.MethodGet, []string{"X-Requested-With", "XMLHttpRequest"}},
		{"GET from fetch", http.MethodGet, []string{"Sec-Fetch-Mode", "cors"}},
		{"GET from no-cors fetch", http.MethodGet, []string{"Sec-Fetch-Mode", "no-cors"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			r := b.do(context.Background(), tt.method, "/private?x=1&y=%2F", tt.header...)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("%s /private: %d, want 401\n%s", tt.method, r.status, r.body)
			}
			if loc := r.location(); loc != "" {
				t.Errorf("Location = %q, want none", loc)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if c := r.setCookie(h.app.cookieName); c != nil {
				t.Errorf("a non-navigation started a login: Set-Cookie %v", c)
			}
			var body struct {
				Error    string `json:"error"`
				LoginURL string `json:"login_url"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatalf("body %q: %v", r.body, err)
			}
			if body.Error != "login_required" {
				t.Errorf("error = %q, want %q", body.Error, "login_required")
			}
			lu, err := url.Parse(body.LoginURL)
			if err != nil || lu.Path != "/login" || lu.Host != "" {
				t.Errorf("login_url = %q, want a /login path", body.LoginURL)
			}
			if tt.method == http.MethodGet {
				if got, want := lu.Query().Get("return_to"), "/private?x=1&y=%2F"; got != want {
					t.Errorf("login_url %q has return_to %q, want %q", body.LoginURL, got, want)
				}
			}
		})
	}
	// What a browser navigation sends is redirected, not refused.
	for _, header := range [][]string{
		nil,
		{"Sec-Fetch-Mode", "navigate"},
		{"Accept", "text/html,application/xhtml+xml,application/json;q=0.9"},
	} {
		b := h.app.newBrowser(t)
		if r := b.get("/private", header...); r.status != http.StatusFound {
			t.Errorf("navigation with %q: %d, want 302", header, r.status)
		}
	}
	if r := h.app.newBrowser(t).do(context.Background(), http.MethodHead, "/private"); r.status != http.StatusFound {
		t.Errorf("HEAD /private: %d, want 302", r.status)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	auth := b.startLogin("/private?x=1&y=2")
	r := b.finish(auth)
	if r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d, want 303; errors %v\n%s", r.status, h.app.takeErrors(), r.body)
	}
	if got, want := r.location(), "/private?x=1&y=2"; got != want {
		t.Errorf("callback Location = %q, want %q", got, want)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("callback %s = %q, want %q", k, got, want)
		}
	}
	c := r.setCookie(h.app.cookieName)
	if c == nil {
		t.Fatalf("callback sets no %s cookie: %q", h.app.cookieName, r.header.Values("Set-Cookie"))
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.Value == "" || c.MaxAge <= 0 {
		t.Errorf("session cookie = %q; want HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, a value and a positive Max-Age", c.String())
	}

	page := b.get(r.location())
	if page.status != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200", r.location(), page.status)
	}
	var u pipaauth.User
	if err := json.Unmarshal([]byte(page.body), &u); err != nil {
		t.Fatal(err)
	}
	want := pipaauth.User{ID: h.subject("alice"), Email: "alice@example.com", EmailVerified: true}
	if u := withoutAuthTime(t, u); u != want {
		t.Errorf("user = %+v, want %+v", u, want)
	}

	if n := h.provider.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	tr, ok := h.provider.LastTokenRequest()
	wantTR := pipatest.TokenRequest{ClientAuth: "client_secret_post", GrantType: "authorization_code", HasVerifier: true, RedirectURI: h.app.cfg.RedirectURL}
	if !ok || tr != wantTR {
		t.Errorf("token request = %+v, want %+v", tr, wantTR)
	}
	if errs := h.app.takeErrors(); len(errs) != 0 {
		t.Errorf("ErrorHandler called with %v", errs)
	}
	if !strings.Contains(h.logs.String(), "pipaauth: login") {
		t.Errorf("no log line for the login:\n%s", h.logs.String())
	}
}

func TestLoginUserNotSharingEmail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: false})
	b := h.app.newBrowser(t)
	b.login("/private")
	want := pipaauth.User{ID: h.subject("bob")}
	if u := withoutAuthTime(t, b.mustUser()); u != want {
		t.Errorf("user = %+v, want %+v", u, want)
	}
}

func TestTokenEndpointClientAuthentication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		methods []string // nil: field absent
		want    string
	}{
		{"absent", nil, "client_secret_post"},
		{"both", []string{"client_secret_basic", "client_secret_post"}, "client_secret_post"},
		{"basic only", []string{"client_secret_basic"}, "client_secret_basic"},
		{"basic and private_key_jwt", []string{"private_key_jwt", "client_secret_basic"}, "client_secret_basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{discovery: func(doc map[string]any) {
				if tt.methods == nil {
					delete(doc, "token_endpoint_auth_methods_supported")
				} else {
					doc["token_endpoint_auth_methods_supported"] = tt.methods
				}
			}})
			b := h.app.newBrowser(t)
			b.login("/private")
			tr, _ := h.provider.LastTokenRequest()
			if tr.ClientAuth != tt.want {
				t.Errorf("client authentication = %q, want %q", tr.ClientAuth, tt.want)
			}
			if n := h.provider.TokenRequests(); n != 1 {
				t.Errorf("token requests = %d, want 1", n)
			}
		})
	}
}

func TestPendingLoginsCompleteInAnyOrder(t *testing.T) {
	t.Parallel()
	for _, order := range [][]int{{3, 2, 1, 0}, {1, 3, 0, 2}, {0, 1, 2, 3}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{})
			b := h.app.newBrowser(t)
			var auths []string
			for i := range 4 {
				auths = append(auths, b.startLogin(fmt.Sprintf("/private?tab=%d", i)))
			}
			for _, i := range order {
				r := b.finish(auths[i])
				if r.status != http.StatusSeeOther {
					t.Fatalf("callback of login %d: %d, want 303; errors %v", i, r.status, h.app.takeErrors())
				}
				if got, want := r.location(), fmt.Sprintf("/private?tab=%d", i); got != want {
					t.Errorf("login %d lands on %q, want %q", i, got, want)
				}
			}
			if u := b.mustUser(); u.ID != h.subject("alice") {
				t.Errorf("user = %+v, want alice", u)
			}
		})
	}
}

func TestPendingLoginsForgetTheOldest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	var auths []string
	for i := range 5 {
		auths = append(auths, b.startLogin(fmt.Sprintf("/private?tab=%d", i)))
	}
	cb := b.authorize(auths[0])
	before := h.provider.TokenRequests()
	expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidState, before)
	b.mustBeLoggedOut()
	for i := 1; i < len(auths); i++ {
		r := b.finish(auths[i])
		if r.status != http.StatusSeeOther || r.location() != fmt.Sprintf("/private?tab=%d", i) {
			t.Errorf("login %d: %d to %q, want 303 to /private?tab=%d; errors %v", i, r.status, r.location(), i, h.app.takeErrors())
		}
	}
}

func TestLoginAttemptExpires(t *testing.T) {
	t.Parallel()
	tests := []struct {
		wait time.Duration
		ok   bool
	}{
		{9 * time.Minute, true},
		{11 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.wait.String(), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{})
			b := h.app.newBrowser(t)
			auth := b.startLogin("/private")
			h.clock.Advance(tt.wait)
			cb := b.authorize(auth)
			before := h.provider.TokenRequests()
			r := b.get(cb)
			if tt.ok {
				if r.status != http.StatusSeeOther {
					t.Errorf("callback after %v: %d, want 303; errors %v", tt.wait, r.status, h.app.takeErrors())
				}
				return
			}
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidState, before)
			b.mustBeLoggedOut()
		})
	}
}

func TestLoginAfterKeyRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	// The JWKS was just fetched: the new kid waits for the next fetch
	// (UnknownKeyInterval, here shortened), and the login goes through.
	pipaauth.SetKeyInterval(h.app.auth, time.Second)
	h.app.newBrowser(t).login("/private")
	h.provider.RotateKeys()
	b := h.app.newBrowser(t)
	b.login("/private")
	if u := b.mustUser(); u.ID != h.subject("alice") {
		t.Errorf("user = %+v, want alice", u)
	}
}

func TestEmailVerifiedOnlyWhenJSONTrue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	for _, v := range []any{"true", 1, nil} {
		h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["email_verified"] = v }})
		b := h.app.newBrowser(t)
		b.login("/private")
		want := pipaauth.User{ID: h.subject("alice"), Email: "alice@example.com", EmailVerified: false}
		if u := withoutAuthTime(t, b.mustUser()); u != want {
			t.Errorf("email_verified %#v: user = %+v, want %+v", v, u, want)
		}
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{prefix: "/auth"})
	b := h.app.newBrowser(t)
	r := b.get("/private?x=1", "Accept", "application/json")
	var body struct {
		LoginURL string `json:"login_url"`
	}
	json.Unmarshal([]byte(r.body), &body)
	if want := "/auth/login?return_to=" + url.QueryEscape("/private?x=1"); r.status != http.StatusUnauthorized || body.LoginURL != want {
		t.Errorf("API request: %d with login_url %q, want 401 with %q", r.status, body.LoginURL, want)
	}
	if got := b.login("/private?x=1"); got != "/private?x=1" {
		t.Errorf("login lands on %q, want /private?x=1", got)
	}
	if tr, _ := h.provider.LastTokenRequest(); tr.RedirectURI != h.app.url+"/auth/callback" {
		t.Errorf("redirect_uri = %q, want %q", tr.RedirectURI, h.app.url+"/auth/callback")
	}
	b2 := h.app.newBrowser(t)
	if got := b2.login("/auth/login?return_to=" + url.QueryEscape("/private?z=3")); got != "/private?z=3" {
		t.Errorf("login from /auth/login lands on %q, want /private?z=3", got)
	}
	if r := b2.post("/auth/logout"); r.status != http.StatusSeeOther {
		t.Errorf("POST /auth/logout: %d, want 303", r.status)
	}
	b2.mustBeLoggedOut()
}

func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := h.app.newBrowser(t)
			b.fatal = func(format string, args ...any) {
				t.Errorf(format, args...)
				runtime.Goexit()
			}
			path := fmt.Sprintf("/private?n=%d", i)
			if got := b.login(path); got != path {
				t.Errorf("login %d lands on %q, want %q", i, got, path)
			}
			if u := b.mustUser(); u.ID != h.subject("alice") {
				t.Errorf("login %d: user %+v, want alice", i, u)
			}
		}()
	}
	wg.Wait()
}

func TestInsecureAllowHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{plainHTTP: true})
	if !strings.HasPrefix(h.app.url, "http://") || !strings.HasPrefix(h.provider.URL, "http://") {
		t.Fatalf("servers at %s and %s, want plain http", h.app.url, h.provider.URL)
	}
	b := h.app.newBrowser(t)
	r := b.finish(b.startLogin("/private"))
	if r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
	}
	c := r.setCookie(plainCookieName)
	if c == nil {
		t.Fatalf("no %s cookie: %q", plainCookieName, r.header.Values("Set-Cookie"))
	}
	if c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie = %q, want HttpOnly, SameSite=Lax and not Secure", c.String())
	}
	if u := b.mustUser(); u.ID != h.subject("alice") {
		t.Errorf("user = %+v, want alice", u)
	}
}
