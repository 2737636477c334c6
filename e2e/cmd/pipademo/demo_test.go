package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/pipatest"
)

// startDemo serves a demo with its embedded PiPA on 127.0.0.1. The provider
// is in automatic mode (the user set with SetUser approves at once) unless
// interactive.
func startDemo(t *testing.T, interactive bool, admins ...string) (*demo, *httptest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDemo(t.Context(), options{
		AppURL: "http://" + ln.Addr().String(),
		Admins: admins,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		ln.Close()
		t.Fatalf("newDemo: %v", err)
	}
	t.Cleanup(d.Close)
	d.Provider.SetInteractive(interactive)
	srv := httptest.NewUnstartedServer(d.Handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return d, srv
}

// newBrowser returns an HTTP client with a cookie jar that follows
// redirects, as a browser would.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

type response struct {
	status int
	url    string // after redirects
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, u string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Request.URL.String(), resp.Header, string(body)}
}

func get(t *testing.T, c *http.Client, u string) response {
	t.Helper()
	return do(t, c, http.MethodGet, u, nil)
}

func getJSON(t *testing.T, c *http.Client, u string) response {
	t.Helper()
	return do(t, c, http.MethodGet, u, http.Header{"Accept": {"application/json"}})
}

func wantContains(t *testing.T, r response, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.body, s) {
			t.Errorf("%s: body does not contain %q:\n%s", r.url, s, r.body)
		}
	}
}

func wantNotContains(t *testing.T, r response, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(r.body, s) {
			t.Errorf("%s: body contains %q:\n%s", r.url, s, r.body)
		}
	}
}

// login logs the client in through the embedded provider in automatic mode
// and returns the page it lands on.
func login(t *testing.T, c *http.Client, srv *httptest.Server, returnTo string) response {
	t.Helper()
	r := get(t, c, srv.URL+"/login?return_to="+url.QueryEscape(returnTo))
	if want := srv.URL + returnTo; r.url != want {
		t.Fatalf("login landed on %s (status %d), want %s:\n%s", r.url, r.status, want, r.body)
	}
	return r
}

func TestHomeLoggedOut(t *testing.T) {
	_, srv := startDemo(t, false)
	r := get(t, newBrowser(t), srv.URL+"/")
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200", r.status)
	}
	wantContains(t, r, "You are not logged in.", `href="/login?return_to=/"`, `href="/admin"`, `href="/api/me"`)
	wantNotContains(t, r, `action="/logout"`)
	if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if r.header.Get("Content-Security-Policy") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers missing: %v", r.header)
	}
	// The home page never starts a login by itself.
	if cookies := r.header.Values("Set-Cookie"); len(cookies) != 0 {
		t.Errorf("home page set cookies %q", cookies)
	}
}

func TestLogin(t *testing.T) {
	d, srv := startDemo(t, false)
	c := newBrowser(t)

	// A logged-out navigation to /admin goes through PiPA and back to /admin.
	r := get(t, c, srv.URL+"/admin")
	if r.status != http.StatusOK || r.url != srv.URL+"/admin" {
		t.Fatalf("GET /admin: status %d at %s, want 200 at /admin:\n%s", r.status, r.url, r.body)
	}
	wantContains(t, r, "Welcome, alice@example.com.", "Only admins see this page.")

	aliceID := d.Provider.Subject(demoClientID, "alice")
	r = get(t, c, srv.URL+"/")
	wantContains(t, r, "You are logged in.", "alice@example.com", aliceID, `action="/logout"`)
	wantNotContains(t, r, "You are not logged in.")

	// The session cookie is the plain-http dev-mode one.
	u, _ := url.Parse(srv.URL)
	var found bool
	for _, ck := range c.Jar.Cookies(u) {
		found = found || strings.HasPrefix(ck.Name, "pipaauth-") && !strings.Contains(ck.Name, "-login-")
	}
	if !found {
		t.Errorf("no pipaauth cookie in the jar: %v", c.Jar.Cookies(u))
	}

	r = getJSON(t, c, srv.URL+"/api/me")
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/me: status %d:\n%s", r.status, r.body)
	}
	var me map[string]any
	if err := json.Unmarshal([]byte(r.body), &me); err != nil {
		t.Fatalf("GET /api/me: %v:\n%s", err, r.body)
	}
	want := map[string]any{"id": aliceID, "email": "alice@example.com", "email_verified": true, "name": "Alice Liddell", "groups": []any{"admins", "staff"}}
	if got, w := fmt.Sprint(me), fmt.Sprint(want); got != w {
		t.Errorf("GET /api/me = %v, want %v", got, w)
	}

	// /me shows the name and groups.
	page := get(t, c, srv.URL+"/me")
	wantContains(t, page, `<dd id="user-name">Alice Liddell</dd>`, `<dd id="user-groups">admins, staff</dd>`)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /api/me: Content-Type %q", ct)
	}
}

func TestAdminForbiddenForBob(t *testing.T) {
	for _, share := range []bool{false, true} {
		t.Run(map[bool]string{false: "email not shared", true: "email shared"}[share], func(t *testing.T) {
			d, srv := startDemo(t, false)
			d.Provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: share})
			c := newBrowser(t)
			login(t, c, srv, "/")

			r := get(t, c, srv.URL+"/admin")
			if r.status != http.StatusForbidden {
				t.Fatalf("GET /admin as bob: status %d, want 403:\n%s", r.status, r.body)
			}
			who := "user <code>" + d.Provider.Subject(demoClientID, "bob") + "</code>, without sharing your email address"
			if share {
				who = "<strong>bob@example.org</strong>"
			}
			wantContains(t, r, "403 Forbidden", "Your account is not allowed to see this page.", "You are logged in as "+who+".", `action="/logout"`,
				`id="switch-account">Log out and use another account</button>`)
			wantNotContains(t, r, "pipaauth:", "Welcome")

			// An API client gets JSON.
			r = getJSON(t, c, srv.URL+"/admin")
			if r.status != http.StatusForbidden || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("GET /admin as JSON: status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
			}
		})
	}
}

func TestAdminsOption(t *testing.T) {
	d, srv := startDemo(t, false, "BOB@example.org")
	d.Provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true})
	c := newBrowser(t)
	r := login(t, c, srv, "/admin")
	wantContains(t, r, "Welcome, bob@example.org.")
}

func TestAPIMeLoggedOut(t *testing.T) {
	_, srv := startDemo(t, false)
	for _, h := range []http.Header{
		{"Accept": {"application/json"}},
		{"Sec-Fetch-Mode": {"cors"}, "Accept": {"*/*"}},
	} {
		r := do(t, newBrowser(t), http.MethodGet, srv.URL+"/api/me", h)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("GET /api/me %v: status %d, want 401:\n%s", h, r.status, r.body)
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatalf("GET /api/me: %v:\n%s", err, r.body)
		}
		if body["error"] != "login_required" || body["login_url"] != "/login?return_to=%2Fapi%2Fme" {
			t.Errorf("GET /api/me %v = %v", h, body)
		}
	}
}

func TestLogout(t *testing.T) {
	_, srv := startDemo(t, false)
	c := newBrowser(t)
	login(t, c, srv, "/")

	// A POST from another site is refused and keeps the session.
	r := do(t, c, http.MethodPost, srv.URL+"/logout", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	if r.status != http.StatusForbidden {
		t.Errorf("cross-site POST /logout: status %d, want 403", r.status)
	}
	wantContains(t, r, "Log out from a page of this site.")
	if r := getJSON(t, c, srv.URL+"/api/me"); r.status != http.StatusOK {
		t.Fatalf("after the refused logout, /api/me: status %d", r.status)
	}

	// GET is not a logout.
	if r := get(t, c, srv.URL+"/logout"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: status %d, want 405", r.status)
	}

	// The form's POST goes to PiPA's end-session endpoint and back home.
	r = do(t, c, http.MethodPost, srv.URL+"/logout", http.Header{"Origin": {srv.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if r.status != http.StatusOK || r.url != srv.URL+"/" {
		t.Fatalf("POST /logout: status %d at %s, want 200 at /:\n%s", r.status, r.url, r.body)
	}
	wantContains(t, r, "You are not logged in.", "You have logged out of pipademo and of PiPA.")
	if r := getJSON(t, c, srv.URL+"/api/me"); r.status != http.StatusUnauthorized {
		t.Errorf("after logout, /api/me: status %d, want 401", r.status)
	}
	// The notice is said once.
	r = get(t, c, srv.URL+"/")
	wantContains(t, r, "You are not logged in.")
	wantNotContains(t, r, "You have logged out")
}

// The logout notice says whether the logout went on to PiPA: it did when
// LogoutHandler redirects to the end-session endpoint, not when it
// redirects home (a provider without one).
func TestNoteLogout(t *testing.T) {
	d := &demo{}
	for _, tt := range []struct {
		location, want string
	}{
		{"http://127.0.0.1:9999/end_session?client_id=pipademo", "pipa"},
		{"/", "app"},
		{"//evil.example/", "pipa"}, // not a local path: not "home"
	} {
		rec := httptest.NewRecorder()
		d.noteLogout(http.RedirectHandler(tt.location, http.StatusSeeOther)).ServeHTTP(rec, httptest.NewRequest("POST", "/logout", nil))
		var got string
		for _, c := range rec.Result().Cookies() {
			if c.Name == logoutCookie {
				got = c.Value
			}
		}
		if got != tt.want {
			t.Errorf("logout redirecting to %s: %s=%q, want %q", tt.location, logoutCookie, got, tt.want)
		}
	}
	// A refused logout (no redirect) notes nothing.
	rec := httptest.NewRecorder()
	d.noteLogout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	})).ServeHTTP(rec, httptest.NewRequest("POST", "/logout", nil))
	if c := rec.Result().Cookies(); len(c) != 0 {
		t.Errorf("refused logout set cookies %v, want none", c)
	}
}

// "Log out and use another account" on the 403 page ends the sessions at
// the app and at PiPA, so the next login may pick another user.
func TestSwitchAccountAfter403(t *testing.T) {
	d, srv := startDemo(t, false)
	d.Provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true})
	c := newBrowser(t)
	login(t, c, srv, "/")
	if r := get(t, c, srv.URL+"/admin"); r.status != http.StatusForbidden {
		t.Fatalf("GET /admin as bob: status %d, want 403", r.status)
	}
	r := do(t, c, http.MethodPost, srv.URL+"/logout", http.Header{"Origin": {srv.URL}, "Sec-Fetch-Site": {"same-origin"}})
	wantContains(t, r, "You have logged out of pipademo and of PiPA.")
	d.Provider.SetUser(demoUser(t, d, "alice"))
	r = login(t, c, srv, "/admin")
	wantContains(t, r, "Welcome, alice@example.com.")
}

// "Try again" after any failed login returns to the page the login was for;
// without a known page it is a plain login.
func TestTryAgainKeepsReturnPath(t *testing.T) {
	d, srv := startDemo(t, false)
	d.Provider.SetBehavior(pipatest.Behavior{AuthorizeError: "server_error"})
	c := newBrowser(t)
	for _, tt := range []struct{ start, link string }{
		{"/api/me", `href="/login?return_to=%2Fapi%2Fme">Try again</a>`},
		{"/login?return_to=/admin", `href="/login?return_to=%2Fadmin">Try again</a>`},
		{"/login?return_to=/elsewhere", `href="/login">Try again</a>`},
		{"/login", `href="/login">Try again</a>`},
	} {
		r := get(t, c, srv.URL+tt.start)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s with PiPA failing: status %d, want 400", tt.start, r.status)
		}
		wantContains(t, r, tt.link)
	}
	// The link works: once PiPA is well again it lands on the page.
	d.Provider.SetBehavior(pipatest.Behavior{})
	r := get(t, c, srv.URL+"/login?return_to=%2Fadmin")
	if r.url != srv.URL+"/admin" {
		t.Errorf("Try again landed on %s, want /admin", r.url)
	}
}

func TestLoginDeclined(t *testing.T) {
	d, srv := startDemo(t, false)
	d.Provider.SetBehavior(pipatest.Behavior{AuthorizeError: "access_denied"})
	r := get(t, newBrowser(t), srv.URL+"/admin")
	if r.status != http.StatusForbidden || !strings.HasPrefix(r.url, srv.URL+"/callback?") {
		t.Fatalf("declined login: status %d at %s, want 403 at /callback", r.status, r.url)
	}
	// "Try again" starts a new login for the page asked for.
	wantContains(t, r, "You declined the login at PiPA", `<a class="button primary" id="try-again" href="/login?return_to=%2Fadmin">Try again</a>`)
	wantNotContains(t, r, "pipaauth:", "Behavior.AuthorizeError")
}

func TestLoginFailures(t *testing.T) {
	d, srv := startDemo(t, false)
	c := newBrowser(t)

	// A callback nobody started.
	r := get(t, c, srv.URL+"/callback?state=forged&code=forged")
	if r.status != http.StatusBadRequest {
		t.Errorf("forged callback: status %d, want 400", r.status)
	}
	wantContains(t, r, "The login did not work", "This login link is unknown, expired or already used.", `href="/login">Try again</a>`)
	wantNotContains(t, r, "pipaauth:")

	// Another refusal from PiPA.
	d.Provider.SetBehavior(pipatest.Behavior{AuthorizeError: "server_error"})
	r = get(t, c, srv.URL+"/login")
	if r.status != http.StatusBadRequest {
		t.Errorf("server_error: status %d, want 400", r.status)
	}
	wantContains(t, r, "The login did not work", "server_error", `href="/login">Try again</a>`)
	wantNotContains(t, r, "You declined", "pipaauth:")

	// A token PiPA signed wrongly.
	d.Provider.SetBehavior(pipatest.Behavior{BadSignature: true})
	r = get(t, c, srv.URL+"/login")
	if r.status < 400 {
		t.Errorf("bad signature: status %d, want an error", r.status)
	}
	wantContains(t, r, "The login did not work", `href="/login">Try again</a>`)
	wantNotContains(t, r, "pipaauth:", "signature")
}

func TestNotFound(t *testing.T) {
	_, srv := startDemo(t, false)
	r := get(t, newBrowser(t), srv.URL+"/nope")
	if r.status != http.StatusNotFound {
		t.Errorf("status %d, want 404", r.status)
	}
	wantContains(t, r, "404 Not Found")
}

func TestNewDemoNeedsAppURL(t *testing.T) {
	if _, err := newDemo(t.Context(), options{Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("newDemo without AppURL: no error")
	}
}

// demoUser returns the embedded PiPA's user name, with the claims the demo
// gave it.
func demoUser(t *testing.T, d *demo, name string) pipatest.User {
	t.Helper()
	for _, u := range d.Provider.Users() {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("the embedded PiPA has no user %q", name)
	return pipatest.User{}
}

// A user in the admins group gets /admin whatever the email; one outside
// it does not, unless -admins names the email.
func TestAdminByGroup(t *testing.T) {
	for _, tt := range []struct {
		name   string
		user   string
		admins []string
		want   int
	}{
		{"alice, in the group", "alice", nil, http.StatusOK},
		{"bob, not in the group", "bob", nil, http.StatusForbidden},
		{"bob, by email", "bob", []string{"bob@example.org"}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, srv := startDemo(t, false, tt.admins...)
			u := demoUser(t, d, tt.user)
			u.ShareEmail = true
			d.Provider.SetUser(u)
			c := newBrowser(t)
			login(t, c, srv, "/")
			if r := get(t, c, srv.URL+"/admin"); r.status != tt.want {
				t.Errorf("GET /admin: %d, want %d", r.status, tt.want)
			}
		})
	}
}
