package pipaauth_test

// Full-flow tests over real HTTP: a pipatest provider and an application
// server, both httptest TLS servers, and a cookie-jar "browser" that steps
// through every redirect itself (app → provider authorize → app callback →
// return path).
//
// Every harness also checks, for every application response and at the end
// of the test for the whole log, that no authorization code, client secret or
// token issued during the test leaks, and that no internal error string
// reaches a response body.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

const (
	clientID     = pipatest.DefaultClientID
	clientSecret = pipatest.DefaultClientSecret
)

// internalMarkers are prefixes of internal error strings that must never reach
// a response body.
var internalMarkers = []string{"oidc:", "oauth2:", "pipaauth: ", "securecookie", "go-jose", "session: ", "context deadline"}

// newKeys returns one fresh securecookie key pair.
func newKeys() [][]byte {
	return [][]byte{[]byte(rand.Text() + rand.Text()), []byte(rand.Text()[:16] + rand.Text()[:16])}
}

// clock is an adjustable Config.Now, starting at the real time (the provider
// stamps its ID tokens with the real time).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// CatchUp sets the clock to the real time again: for long tests whose
// provider stamps ID tokens with the real time (iat more than a minute
// ahead of the application's clock is refused).
func (c *clock) CatchUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = time.Now()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secrets collects the codes and tokens issued during a test.
type secrets struct {
	mu     sync.Mutex
	codes  []string
	tokens []string
}

func (s *secrets) addCode(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes = append(s.codes, c)
}

func (s *secrets) addToken(t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, t)
}

func (s *secrets) counts() (codes, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.codes), len(s.tokens)
}

// all returns every secret with a label for messages.
func (s *secrets) all() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{clientSecret: "the client secret"}
	for _, c := range s.codes {
		m[c] = "an authorization code"
	}
	for _, t := range s.tokens {
		m[t] = "a token"
	}
	return m
}

// setup configures a harness or one of its apps.
type setup struct {
	prefix        string                     // mount login, callback and logout below it
	plainHTTP     bool                       // http servers and InsecureAllowHTTP
	discovery     func(doc map[string]any)   // provider DiscoveryHook, in place before New
	configure     func(cfg *pipaauth.Config) // last edit of the Config
	defaultErrors bool                       // leave Config.ErrorHandler nil (errors are then not recorded)
}

type harness struct {
	t         *testing.T
	provider  *pipatest.Server
	clock     *clock
	logs      *syncBuffer
	secrets   *secrets
	discovery func(map[string]any)
	app       *app
}

// app is an application server with an Auth mounted.
type app struct {
	h          *harness
	srv        *httptest.Server
	url        string
	cfg        pipaauth.Config // as passed to New
	auth       *pipaauth.Auth
	loginPath  string
	cookieName string

	mu   sync.Mutex
	errs []error
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{now: time.Now()}, logs: &syncBuffer{}, secrets: &secrets{}, discovery: s.discovery}
	t.Cleanup(h.checkLogs) // runs last
	if s.plainHTTP {
		h.provider = pipatest.NewServer()
	} else {
		h.provider = pipatest.NewTLSServer()
	}
	t.Cleanup(h.provider.Close)
	h.setBehavior(pipatest.Behavior{})
	h.app = h.newApp(s)
	return h
}

// setBehavior sets the provider's Behavior, keeping the harness's discovery
// hook and recording every token it issues.
func (h *harness) setBehavior(b pipatest.Behavior) {
	if b.DiscoveryHook == nil {
		b.DiscoveryHook = h.discovery
	}
	hook := b.TokenHook
	b.TokenHook = func(resp map[string]any) {
		if hook != nil {
			hook(resp)
		}
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if s, ok := resp[k].(string); ok && s != "" {
				h.secrets.addToken(s)
			}
		}
	}
	h.provider.SetBehavior(b)
}

func (h *harness) subject(name string) string { return h.provider.Subject(clientID, name) }

func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// baseConfig is a valid Config for an app at appURL.
func (h *harness) baseConfig(appURL, prefix string, plainHTTP bool) pipaauth.Config {
	cfg := pipaauth.Config{
		Issuer:            h.provider.URL,
		ClientID:          clientID,
		ClientSecret:      clientSecret,
		RedirectURL:       appURL + prefix + "/callback",
		SessionKeys:       newKeys(),
		HTTPClient:        h.provider.Client(),
		Logger:            h.logger(),
		Now:               h.clock.Now,
		InsecureAllowHTTP: plainHTTP,
	}
	if prefix != "" {
		cfg.LoginPath = prefix + "/login"
	}
	return cfg
}

// newApp starts an application server, builds its Auth (after the server
// started, so that RedirectURL is known) and mounts the handlers.
func (h *harness) newApp(s setup) *app {
	t := h.t
	t.Helper()
	a := &app{h: h}
	var handler atomic.Pointer[http.Handler]
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) })
	if s.plainHTTP {
		a.srv = httptest.NewServer(front)
	} else {
		a.srv = httptest.NewTLSServer(front)
	}
	t.Cleanup(a.srv.Close)
	a.url = a.srv.URL

	cfg := h.baseConfig(a.url, s.prefix, s.plainHTTP)
	if s.configure != nil {
		s.configure(&cfg)
	}
	a.loginPath = cfg.LoginPath
	if a.loginPath == "" {
		a.loginPath = pipaauth.DefaultLoginPath
	}
	if !s.defaultErrors && cfg.ErrorHandler == nil {
		render := pipaauth.DefaultErrorHandler(a.loginPath)
		cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			a.mu.Lock()
			a.errs = append(a.errs, err)
			a.mu.Unlock()
			render(w, r, err)
		}
	}
	a.cfg = cfg
	a.cookieName = "__Host-pipaauth"
	if strings.HasPrefix(cfg.RedirectURL, "http://") {
		a.cookieName = "pipaauth"
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	auth, err := pipaauth.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.auth = auth

	mux := http.NewServeMux()
	mux.Handle(s.prefix+"/login", auth.LoginHandler())
	mux.Handle(s.prefix+"/callback", auth.CallbackHandler())
	// Mounted for every method, so that the handler's own method check is
	// what a GET meets.
	mux.Handle(s.prefix+"/logout", auth.LogoutHandler())
	mux.Handle("/private", auth.RequireLogin(http.HandlerFunc(echoUser)))
	mux.Handle("/admin", auth.RequireUser(pipaauth.AllowEmails("alice@example.com"))(text("admin")))
	mux.Handle("/staff", auth.RequireUser(pipaauth.AllowEmailDomains("example.com"))(text("staff")))
	mux.Handle("/ids", auth.RequireUser(pipaauth.AllowUserIDs(h.subject("alice")))(text("ids")))
	mux.Handle("/{$}", text("home"))
	var hh http.Handler = mux
	handler.Store(&hh)
	return a
}

func echoUser(w http.ResponseWriter, r *http.Request) {
	u, ok := pipaauth.UserFromContext(r.Context())
	if !ok {
		http.Error(w, "no user in the context", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(u)
}

func text(s string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, s)
	})
}

// takeErrors returns and forgets the errors the ErrorHandler received.
func (a *app) takeErrors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.errs
	a.errs = nil
	return e
}

// checkLogs fails the test when the log holds a code, the client secret or a
// token.
func (h *harness) checkLogs() {
	logs := h.logs.String()
	for s, what := range h.secrets.all() {
		if strings.Contains(logs, s) {
			h.t.Errorf("the log contains %s (%.12s…):\n%s", what, s, logs)
		}
	}
}

// checkResponse fails the test when an application response leaks a secret
// or an internal error string, or sets a cookie over 4096 bytes.
func (h *harness) checkResponse(fail func(string, ...any), method, target string, r *response) {
	var hdr strings.Builder
	h.withoutIDTokenHint(r.header).Write(&hdr)
	all := hdr.String() + "\n" + r.body
	for s, what := range h.secrets.all() {
		if strings.Contains(all, s) {
			fail("%s %s: the response contains %s:\n%s", method, target, what, all)
		}
	}
	for _, m := range internalMarkers {
		if strings.Contains(r.body, m) {
			fail("%s %s: the response body contains the internal string %q:\n%s", method, target, m, r.body)
		}
	}
	for _, c := range r.header.Values("Set-Cookie") {
		if len(c) > 4096 {
			fail("%s %s: Set-Cookie of %d bytes, more than 4096", method, target, len(c))
		}
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r *response) location() string { return r.header.Get("Location") }

// setCookie returns the Set-Cookie of the named cookie, or nil.
func (r *response) setCookie(name string) *http.Cookie {
	var found *http.Cookie
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name {
			found = c
		}
	}
	return found
}

// attemptCookies returns the login attempt cookies r sets (not those it
// deletes).
func (r *response) attemptCookies(sessionCookie string) []*http.Cookie {
	var out []*http.Cookie
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && strings.HasPrefix(c.Name, sessionCookie+"-login-") && c.MaxAge > 0 {
			out = append(out, c)
		}
	}
	return out
}

// browser is a cookie-jar client that does not follow redirects.
type browser struct {
	h     *harness
	app   *app
	jar   *cookiejar.Jar
	c     *http.Client
	fatal func(format string, args ...any)
}

func (a *app) newBrowser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		a.h.t.Fatal(err)
	}
	return &browser{
		h:   a.h,
		app: a,
		jar: jar,
		c: &http.Client{
			Transport:     a.h.provider.Client().Transport,
			Jar:           jar,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       20 * time.Second,
		},
		fatal: a.h.t.Fatalf,
	}
}

// do sends a request; target is a path on the browser's app or an absolute
// URL. header holds name, value pairs.
func (b *browser) do(ctx context.Context, method, target string, header ...string) *response {
	b.h.t.Helper()
	u := target
	if strings.HasPrefix(target, "/") {
		u = b.app.url + target
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		b.fatal("%s %s: %v", method, u, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.fatal("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.fatal("%s %s: reading the body: %v", method, u, err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if pu, _ := url.Parse(b.h.provider.URL); req.URL.Host != pu.Host {
		b.h.checkResponse(b.errorf, method, u, r)
	}
	return r
}

func (b *browser) errorf(format string, args ...any) {
	b.h.t.Helper()
	b.h.t.Errorf(format, args...)
}

func (b *browser) get(target string, header ...string) *response {
	b.h.t.Helper()
	return b.do(context.Background(), http.MethodGet, target, header...)
}

func (b *browser) post(target string, header ...string) *response {
	b.h.t.Helper()
	return b.do(context.Background(), http.MethodPost, target, header...)
}

// startLogin navigates to path and expects a redirect to PiPA's
// authorization endpoint, which it returns.
func (b *browser) startLogin(path string) string {
	b.h.t.Helper()
	r := b.get(path)
	if r.status != http.StatusFound || !strings.HasPrefix(r.location(), b.h.provider.URL+"/authorize?") {
		b.fatal("GET %s: %d, Location %q; want 302 to %s/authorize\n%s", path, r.status, r.location(), b.h.provider.URL, r.body)
	}
	return r.location()
}

// authorize visits PiPA's authorization endpoint and returns the callback
// URL it redirects to, recording the code.
func (b *browser) authorize(authURL string) string {
	b.h.t.Helper()
	r := b.get(authURL)
	loc := r.location()
	if r.status != http.StatusFound || !strings.HasPrefix(loc, b.app.cfg.RedirectURL+"?") {
		b.fatal("GET %s: %d, Location %q; want 302 to %s\n%s", authURL, r.status, loc, b.app.cfg.RedirectURL, r.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.fatal("callback URL %q: %v", loc, err)
	}
	if c := u.Query().Get("code"); c != "" {
		b.h.secrets.addCode(c)
	}
	return loc
}

// finish runs the authorization and the callback of a started login.
func (b *browser) finish(authURL string) *response {
	b.h.t.Helper()
	return b.get(b.authorize(authURL))
}

// login logs in from a navigation to path and returns where the callback
// sends the browser.
func (b *browser) login(path string) string {
	b.h.t.Helper()
	r := b.finish(b.startLogin(path))
	if r.status != http.StatusSeeOther {
		b.fatal("login from %s: callback answered %d, want 303; errors %v\n%s", path, r.status, b.app.takeErrors(), r.body)
	}
	return r.location()
}

// user fetches /private as an API client: the user and 200, or the status.
func (b *browser) user() (pipaauth.User, int) {
	b.h.t.Helper()
	r := b.get("/private", "Accept", "application/json")
	var u pipaauth.User
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &u); err != nil {
			b.fatal("GET /private: %v in %q", err, r.body)
		}
	}
	return u, r.status
}

func (b *browser) mustUser() pipaauth.User {
	b.h.t.Helper()
	u, status := b.user()
	if status != http.StatusOK {
		b.fatal("GET /private as an API client: %d, want 200 (logged in)", status)
	}
	return u
}

func (b *browser) mustBeLoggedOut() {
	b.h.t.Helper()
	if u, status := b.user(); status != http.StatusUnauthorized {
		b.fatal("GET /private as an API client: %d (user %+v), want 401 (not logged in)", status, u)
	}
}

// cookie returns the session cookie's value in the jar.
func (b *browser) cookie() string {
	b.h.t.Helper()
	u, _ := url.Parse(b.app.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == b.app.cookieName {
			return c.Value
		}
	}
	b.fatal("no %s cookie in the jar", b.app.cookieName)
	return ""
}

// withQuery returns rawURL with its query edited by edit.
func withQuery(t *testing.T, rawURL string, edit func(q url.Values)) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	edit(q)
	u.RawQuery = q.Encode()
	return u.String()
}

func query(t *testing.T, rawURL string) url.Values {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// expectFailure checks a callback response: its status, exactly one error
// handed to the ErrorHandler wrapping want, and no token request since
// tokensBefore (tokensBefore < 0: not checked).
func expectFailure(t *testing.T, h *harness, r *response, status int, want error, tokensBefore int) {
	t.Helper()
	if r.status != status {
		t.Errorf("callback status = %d, want %d\n%s", r.status, status, r.body)
	}
	errs := h.app.takeErrors()
	if len(errs) != 1 || !errors.Is(errs[0], want) {
		t.Errorf("ErrorHandler got %v, want one error wrapping %v", errs, want)
	}
	if tokensBefore >= 0 {
		if n := h.provider.TokenRequests(); n != tokensBefore {
			t.Errorf("token requests = %d, want %d (none for this callback)", n, tokensBefore)
		}
	}
}

var randomish = regexp.MustCompile(`^[A-Za-z0-9_-]{22,}$`)

func TestRequireLoginRedirectsNavigation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
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
			if v := q.Get(k); !randomish.MatchString(v) {
				t.Errorf("%s = %q, want at least 22 base64url characters", k, v)
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
	b := h.app.newBrowser()
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
			b := h.app.newBrowser()
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
		b := h.app.newBrowser()
		if r := b.get("/private", header...); r.status != http.StatusFound {
			t.Errorf("navigation with %q: %d, want 302", header, r.status)
		}
	}
	if r := h.app.newBrowser().do(context.Background(), http.MethodHead, "/private"); r.status != http.StatusFound {
		t.Errorf("HEAD /private: %d, want 302", r.status)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
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
	c := r.setCookie("__Host-pipaauth")
	if c == nil {
		t.Fatalf("callback sets no __Host-pipaauth cookie: %q", r.header.Values("Set-Cookie"))
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
	b := h.app.newBrowser()
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
			b := h.app.newBrowser()
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
			b := h.app.newBrowser()
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
	b := h.app.newBrowser()
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
			b := h.app.newBrowser()
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

func TestFailedCallbackIsSingleUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
	auth := b.startLogin("/private")
	h.setBehavior(pipatest.Behavior{TokenStatus: http.StatusInternalServerError})
	if r := b.finish(auth); r.status != http.StatusBadGateway {
		t.Fatalf("callback with a failing token endpoint: %d, want 502", r.status)
	}
	h.app.takeErrors()
	// The same authorization request again: the same state, a fresh and valid code.
	h.setBehavior(pipatest.Behavior{})
	cb := b.authorize(auth)
	before := h.provider.TokenRequests()
	expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidState, before)
	b.mustBeLoggedOut()
}

func TestCallbackProviderError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		code   string
		status int
		shown  string // what the page shows; "" for nothing to check
	}{
		{"access_denied", http.StatusForbidden, "access_denied"},
		{"server_error", http.StatusBadRequest, "server_error"},
		{"temporarily_unavailable", http.StatusBadRequest, "temporarily_unavailable"},
		{"login_required", http.StatusBadRequest, "login_required"},
		{"<script>alert(1)</script>", http.StatusBadRequest, "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{`"><img src=x onerror=alert(1)>`, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			b := h.app.newBrowser()
			auth := b.startLogin("/private")
			h.setBehavior(pipatest.Behavior{AuthorizeError: tt.code})
			cb := b.authorize(auth)
			h.setBehavior(pipatest.Behavior{})
			if got := query(t, cb).Get("error"); got != tt.code {
				t.Fatalf("provider sent error %q, want %q", got, tt.code)
			}
			before := h.provider.TokenRequests()
			r := b.get(cb)
			if r.status != tt.status {
				t.Errorf("callback status = %d, want %d\n%s", r.status, tt.status, r.body)
			}
			if tt.shown != "" && !strings.Contains(r.body, tt.shown) {
				t.Errorf("the page does not show %q:\n%s", tt.shown, r.body)
			}
			for _, raw := range []string{"<script", "<img"} {
				if strings.Contains(r.body, raw) {
					t.Errorf("the page contains %q unescaped:\n%s", raw, r.body)
				}
			}
			if n := h.provider.TokenRequests(); n != before {
				t.Errorf("token requests = %d, want %d", n, before)
			}
			errs := h.app.takeErrors()
			var pe *pipaauth.ProviderError
			if len(errs) != 1 {
				t.Errorf("ErrorHandler got %v, want one error", errs)
			} else if tt.shown != "" && (!errors.As(errs[0], &pe) || pe.Code != tt.code) {
				t.Errorf("ErrorHandler got %v, want a *ProviderError with code %q", errs[0], tt.code)
			}
			b.mustBeLoggedOut()
			if tt.shown == "" {
				return // refused before the state was looked at
			}
			// The attempt is spent: a valid code for the same state is refused.
			cb = b.authorize(auth)
			before = h.provider.TokenRequests()
			expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidState, before)
		})
	}
}

func TestCallbackRejectsBadState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		name string
		edit func(q url.Values)
	}{
		{"missing", func(q url.Values) { q.Del("state") }},
		{"empty", func(q url.Values) { q.Set("state", "") }},
		{"unknown", func(q url.Values) { q.Set("state", rand.Text()) }},
		{"tampered", func(q url.Values) {
			s := []byte(q.Get("state"))
			if s[0] == 'A' {
				s[0] = 'B'
			} else {
				s[0] = 'A'
			}
			q.Set("state", string(s))
		}},
		{"truncated", func(q url.Values) { q.Set("state", q.Get("state")[:21]) }},
		{"extended", func(q url.Values) { q.Set("state", q.Get("state")+"A") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser()
			cb := withQuery(t, b.authorize(b.startLogin("/private")), tt.edit)
			before := h.provider.TokenRequests()
			r := b.get(cb)
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidState, before)
			for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			b.mustBeLoggedOut()
		})
	}
}

func TestCallbackWhenLoggedIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
	cb := b.authorize(b.startLogin("/private"))
	if r := b.get(cb); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", r.status)
	}
	alice := b.mustUser()
	h.provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true})

	// Replaying the exact callback URL of the login keeps the session.
	before := h.provider.TokenRequests()
	r := b.get(cb)
	if r.status != http.StatusSeeOther || r.location() != "/" {
		t.Errorf("replayed callback: %d to %q, want 303 to /", r.status, r.location())
	}
	if n := h.provider.TokenRequests(); n != before {
		t.Errorf("the replay made %d token requests, want none", n-before)
	}
	if u := b.mustUser(); u != alice {
		t.Errorf("after the replay the user is %+v, want %+v", u, alice)
	}

	// An unknown state with a valid code (bob's) does the same.
	for _, edit := range []func(q url.Values){
		func(q url.Values) { q.Set("state", rand.Text()) },
		func(q url.Values) { q.Del("state") },
	} {
		cb2 := withQuery(t, b.authorize(b.startLogin("/login")), edit)
		before = h.provider.TokenRequests()
		r = b.get(cb2)
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("callback with an unknown state while logged in: %d to %q, want 303 to /", r.status, r.location())
		}
		if n := h.provider.TokenRequests(); n != before {
			t.Errorf("the unknown state made %d token requests, want none", n-before)
		}
		if u := b.mustUser(); u != alice {
			t.Errorf("after an unknown state the user is %+v, want %+v", u, alice)
		}
	}
	if errs := h.app.takeErrors(); len(errs) != 0 {
		t.Errorf("ErrorHandler called with %v", errs)
	}
}

func TestCallbackRejectsMalformedQuery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		name string
		edit func(t *testing.T, raw string) string // edits the raw callback URL
	}{
		{"repeated state", func(t *testing.T, raw string) string {
			return raw + "&state=" + url.QueryEscape(query(t, raw).Get("state"))
		}},
		{"repeated code", func(t *testing.T, raw string) string {
			return raw + "&code=" + url.QueryEscape(query(t, raw).Get("code"))
		}},
		{"repeated iss", func(t *testing.T, raw string) string {
			return raw + "&iss=" + url.QueryEscape(query(t, raw).Get("iss"))
		}},
		{"other iss", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("iss", "https://evil.example") })
		}},
		{"iss with a trailing slash", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("iss", q.Get("iss")+"/") })
		}},
		{"iss over http", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("iss", strings.Replace(q.Get("iss"), "https:", "http:", 1)) })
		}},
		{"missing iss (promised by discovery)", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Del("iss") })
		}},
		{"missing code", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Del("code") })
		}},
		{"empty code", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("code", "") })
		}},
		{"code and error", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("error", "access_denied") })
		}},
		{"bad escape", func(t *testing.T, raw string) string { return raw + "&x=%zz" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser()
			cb := tt.edit(t, b.authorize(b.startLogin("/private")))
			before := h.provider.TokenRequests()
			expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidCallback, before)
			b.mustBeLoggedOut()
		})
	}
}

func TestCallbackWithoutIssWhenNotPromised(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{discovery: func(doc map[string]any) {
		delete(doc, "authorization_response_iss_parameter_supported")
	}})
	b := h.app.newBrowser()
	cb := withQuery(t, b.authorize(b.startLogin("/private")), func(q url.Values) { q.Del("iss") })
	if r := b.get(cb); r.status != http.StatusSeeOther {
		t.Errorf("callback without iss from a provider that does not promise one: %d, want 303; errors %v", r.status, h.app.takeErrors())
	}
	// A wrong iss is still refused.
	cb = withQuery(t, b.authorize(b.startLogin("/login")), func(q url.Values) { q.Set("iss", "https://evil.example") })
	before := h.provider.TokenRequests()
	expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidCallback, before)
}

func TestCallbackMethod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
	cb := b.authorize(b.startLogin("/private"))
	before := h.provider.TokenRequests()
	r := b.post(cb)
	expectFailure(t, h, r, http.StatusMethodNotAllowed, pipaauth.ErrMethod, before)
	if got := r.header.Get("Allow"); got != http.MethodGet {
		t.Errorf("Allow = %q, want GET", got)
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		behavior pipatest.Behavior
		timeout  time.Duration
		status   int
	}{
		{"500", pipatest.Behavior{TokenStatus: http.StatusInternalServerError}, 0, http.StatusBadGateway},
		{"503", pipatest.Behavior{TokenStatus: http.StatusServiceUnavailable}, 0, http.StatusBadGateway},
		{"400 invalid_grant", pipatest.Behavior{TokenStatus: http.StatusBadRequest}, 0, http.StatusBadRequest},
		{"401", pipatest.Behavior{TokenStatus: http.StatusUnauthorized}, 0, http.StatusBadRequest},
		{"slow", pipatest.Behavior{TokenDelay: 5 * time.Second}, 300 * time.Millisecond, http.StatusGatewayTimeout},
		{"no access_token", pipatest.Behavior{TokenHook: func(resp map[string]any) { clear(resp) }}, 0, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.ExchangeTimeout = tt.timeout }})
			b := h.app.newBrowser()
			cb := b.authorize(b.startLogin("/private"))
			h.setBehavior(tt.behavior)
			before := h.provider.TokenRequests()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			r := b.do(ctx, http.MethodGet, cb)
			expectFailure(t, h, r, tt.status, pipaauth.ErrExchange, -1)
			if n := h.provider.TokenRequests() - before; n != 1 {
				t.Errorf("the callback made %d token requests, want exactly 1 (a code is never sent twice)", n)
			}
			b.mustBeLoggedOut()
		})
	}
}

func TestIDTokenRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	long := strings.Repeat("s", 256)
	tests := []struct {
		name string
		b    pipatest.Behavior
	}{
		{"WrongNonce", pipatest.Behavior{WrongNonce: true}},
		{"WrongIssuer", pipatest.Behavior{WrongIssuer: true}},
		{"WrongAudience", pipatest.Behavior{WrongAudience: true}},
		{"ExtraAudience", pipatest.Behavior{ExtraAudience: true}},
		{"WrongAZP", pipatest.Behavior{WrongAZP: true}},
		{"Expired", pipatest.Behavior{Expired: true}},
		{"IssuedInFuture", pipatest.Behavior{IssuedInFuture: true}},
		{"OmitSubject", pipatest.Behavior{OmitSubject: true}},
		{"OmitSubject without user_id", pipatest.Behavior{OmitSubject: true, OmitUserID: true}},
		{"OmitIssuedAt", pipatest.Behavior{OmitIssuedAt: true}},
		{"OmitNonce", pipatest.Behavior{OmitNonce: true}},
		{"OmitIDToken", pipatest.Behavior{OmitIDToken: true}},
		{"BadSignature", pipatest.Behavior{BadSignature: true}},
		{"BadAtHash", pipatest.Behavior{BadAtHash: true}},
		{"UserID differs from sub", pipatest.Behavior{UserID: "someone-else"}},
		{"UserID empty", pipatest.Behavior{UserID: ""}},
		{"UserID object", pipatest.Behavior{UserID: map[string]any{"id": "x"}}},
		{"token_type not Bearer", pipatest.Behavior{TokenHook: func(resp map[string]any) { resp["token_type"] = "mac" }}},
		{"sub too long", pipatest.Behavior{OmitUserID: true, ClaimsHook: func(c map[string]any) { c["sub"] = long }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser()
			auth := b.startLogin("/private")
			h.setBehavior(tt.b)
			defer h.setBehavior(pipatest.Behavior{})
			r := b.finish(auth)
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
			b.mustBeLoggedOut()
		})
	}
	if _, tokens := h.secrets.counts(); tokens == 0 {
		t.Errorf("no token recorded: the leak checks would be vacuous")
	}
}

func TestLoginAfterKeyRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	h.app.newBrowser().login("/private")
	h.provider.RotateKeys()
	b := h.app.newBrowser()
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
		b := h.app.newBrowser()
		b.login("/private")
		want := pipaauth.User{ID: h.subject("alice"), Email: "alice@example.com", EmailVerified: false}
		if u := withoutAuthTime(t, b.mustUser()); u != want {
			t.Errorf("email_verified %#v: user = %+v, want %+v", v, u, want)
		}
	}
}

func TestLoginWithoutOpenIDScope(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.Scopes = []string{"email"} }})
	tests := []struct {
		name   string
		b      pipatest.Behavior
		wantID string // "" for refused
	}{
		{"subject string", pipatest.Behavior{}, "SUBJECT"},
		{"number", pipatest.Behavior{UserID: float64(12345)}, "12345"},
		{"zero", pipatest.Behavior{UserID: float64(0)}, "0"},
		{"largest exact number", pipatest.Behavior{UserID: float64(1<<53 - 1)}, "9007199254740991"},
		{"2^53", pipatest.Behavior{UserID: float64(1 << 53)}, ""},
		{"2^53+1 as a JSON number", pipatest.Behavior{UserID: json.Number("9007199254740993")}, ""},
		{"huge", pipatest.Behavior{UserID: json.Number("1e300")}, ""},
		{"fraction", pipatest.Behavior{UserID: 1.5}, ""},
		{"negative", pipatest.Behavior{UserID: float64(-1)}, ""},
		{"empty string", pipatest.Behavior{UserID: ""}, ""},
		{"boolean", pipatest.Behavior{UserID: true}, ""},
		{"absent", pipatest.Behavior{OmitUserID: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser()
			auth := b.startLogin("/private")
			if got := query(t, auth).Get("scope"); got != "email" {
				t.Fatalf("scope = %q, want %q", got, "email")
			}
			h.setBehavior(tt.b)
			defer h.setBehavior(pipatest.Behavior{})
			r := b.finish(auth)
			if tt.wantID == "" {
				expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
				b.mustBeLoggedOut()
				return
			}
			if r.status != http.StatusSeeOther {
				t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
			}
			want := tt.wantID
			if want == "SUBJECT" {
				want = h.subject("alice")
			}
			if u := b.mustUser(); u.ID != want {
				t.Errorf("user id = %q, want %q", u.ID, want)
			}
		})
	}
}

func TestLoginReplacesSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
	b.login("/private")
	if u := b.mustUser(); u.Email != "alice@example.com" {
		t.Fatalf("first login: user %+v, want alice", u)
	}
	// Bob does not share his email: nothing of alice's may survive.
	h.provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: false})
	r := b.finish(b.startLogin("/login?return_to=%2Fprivate"))
	if r.status != http.StatusSeeOther || r.location() != "/private" {
		t.Fatalf("second login: %d to %q, want 303 to /private; errors %v", r.status, r.location(), h.app.takeErrors())
	}
	want := pipaauth.User{ID: h.subject("bob")}
	if u := withoutAuthTime(t, b.mustUser()); u != want {
		t.Errorf("after logging in as bob the user is %+v, want %+v", u, want)
	}
}

func TestSessionCookieChangesAtLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
	// Before the first login there is no session cookie at all: nothing a
	// site could plant and have logged in later.
	auth := b.startLogin("/private")
	u, _ := url.Parse(h.app.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == h.app.cookieName {
			t.Fatalf("a login start set the session cookie")
		}
	}
	if r := b.finish(auth); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	pre := b.cookie()
	auth = b.startLogin("/login?return_to=%2Fprivate")
	if b.cookie() != pre {
		t.Fatalf("starting a login changed the session cookie")
	}
	h.clock.Advance(time.Second)
	if r := b.finish(auth); r.status != http.StatusSeeOther {
		t.Fatalf("second login: %d", r.status)
	}
	post := b.cookie()
	if pre == post {
		t.Fatalf("the session cookie did not change at the second login")
	}
	if r := h.app.newBrowser().get("/private", "Accept", "application/json", "Cookie", h.app.cookieName+"="+post); r.status != http.StatusOK {
		t.Errorf("the post-login cookie gets %d, want 200", r.status)
	}
}

func TestTamperedCookie(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
	b.login("/private")
	value := b.cookie()
	// flip changes the top bit of the base64 digit at i, so that the
	// decoded bytes change even where low bits are padding.
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	flip := func(i int) string {
		v := []byte(value)
		if d := strings.IndexByte(digits, v[i]); d >= 0 {
			v[i] = digits[d^0x20]
		} else {
			v[i] = 'A'
		}
		return string(v)
	}
	tests := map[string]string{
		"first character":  flip(0),
		"middle character": flip(len(value) / 2),
		"last character":   flip(len(value) - 1),
		"truncated":        value[:len(value)-4],
		"extended":         value + "AAAA",
		"garbage":          "not-a-session",
	}
	for name, tampered := range tests {
		t.Run(name, func(t *testing.T) {
			cookie := h.app.cookieName + "=" + tampered
			nav := h.app.newBrowser().get("/private", "Cookie", cookie)
			if nav.status != http.StatusFound || !strings.HasPrefix(nav.location(), h.provider.URL+"/authorize?") {
				t.Errorf("navigation with a tampered cookie: %d to %q, want 302 to the provider", nav.status, nav.location())
			}
			if c := nav.setCookie(h.app.cookieName); c != nil {
				t.Errorf("navigation with a tampered cookie sets %v, want the session cookie left alone (a login replaces it)", c)
			}
			if len(nav.attemptCookies(h.app.cookieName)) != 1 {
				t.Errorf("navigation with a tampered cookie sets %q, want one attempt cookie", nav.header.Values("Set-Cookie"))
			}
			api := h.app.newBrowser().get("/private", "Cookie", cookie, "Accept", "application/json")
			if api.status != http.StatusUnauthorized {
				t.Errorf("API request with a tampered cookie: %d, want 401", api.status)
			}
			// Never cleared on a 401: the request may have been sent before a
			// login and answered after it.
			if sc := api.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("API request with a tampered cookie sets %q, want no cookie", sc)
			}
		})
	}
}

func TestCookieSealedWithOtherKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	other := h.newApp(setup{}) // fresh SessionKeys
	b := h.app.newBrowser()
	b.login("/private")
	cookie := h.app.cookieName + "=" + b.cookie()
	if r := other.newBrowser().get("/private", "Cookie", cookie, "Accept", "application/json"); r.status != http.StatusUnauthorized {
		t.Errorf("another Auth's cookie on an API request: %d, want 401", r.status)
	}
	if r := other.newBrowser().get("/private", "Cookie", cookie); r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
		t.Errorf("another Auth's cookie on a navigation: %d to %q, want 302 to the provider", r.status, r.location())
	}
	b.mustUser() // still fine where it belongs
}

func TestSessionLifetime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser()
	b.login("/private")
	h.clock.Advance(12*time.Hour - time.Second)
	b.mustUser()
	h.clock.Advance(2 * time.Second)
	if r := b.get("/private"); r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
		t.Errorf("navigation 12h+1s after login: %d to %q, want 302 to the provider", r.status, r.location())
	}
	b.mustBeLoggedOut()
}

func TestSessionKeyRotation(t *testing.T) {
	t.Parallel()
	oldKeys, newPair := newKeys(), newKeys()
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.SessionKeys = oldKeys }})
	rotated := h.newApp(setup{configure: func(cfg *pipaauth.Config) { cfg.SessionKeys = append(slices.Clone(newPair), oldKeys...) }})
	newOnly := h.newApp(setup{configure: func(cfg *pipaauth.Config) { cfg.SessionKeys = newPair }})
	b := h.app.newBrowser()
	b.login("/private")
	cookie := h.app.cookieName + "=" + b.cookie()
	r := rotated.newBrowser().get("/private", "Cookie", cookie, "Accept", "application/json")
	if r.status != http.StatusOK {
		t.Fatalf("an Auth with {new, old} keys answers %d to a cookie sealed with the old keys, want 200", r.status)
	}
	var u pipaauth.User
	json.Unmarshal([]byte(r.body), &u)
	if u.ID != h.subject("alice") {
		t.Errorf("user = %+v, want alice", u)
	}
	if r := newOnly.newBrowser().get("/private", "Cookie", cookie, "Accept", "application/json"); r.status != http.StatusUnauthorized {
		t.Errorf("an Auth with only the new keys answers %d, want 401", r.status)
	}
}

func TestCookieSizeWithLongEmailAndPendingLogins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	local := strings.Repeat("a", 64)
	domain := strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 53) + ".example"
	email := local + "@" + domain
	if len(email) != 254 {
		t.Fatalf("test email is %d characters, want 254", len(email))
	}
	h.provider.SetUser(pipatest.User{Name: "long", Email: email, EmailVerified: true, ShareEmail: true})
	b := h.app.newBrowser()
	b.login("/private")
	// Four pending logins with 256-byte return paths: each has a cookie of
	// its own, so the session cookie does not grow with them.
	var auths, paths []string
	for i := range 4 {
		p := fmt.Sprintf("/private?tab=%d&pad=", i)
		p += strings.Repeat("x", 256-len(p))
		paths = append(paths, p)
		auths = append(auths, b.startLogin("/login?return_to="+url.QueryEscape(p)))
	}
	r := b.finish(auths[len(auths)-1])
	if r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
	}
	if got := r.location(); got != paths[len(paths)-1] {
		t.Errorf("landed on %q, want %q", got, paths[len(paths)-1])
	}
	c := r.setCookie(h.app.cookieName)
	if c == nil {
		t.Fatalf("no session cookie set")
	}
	t.Logf("session cookie with a 254-byte email and %d pending logins: %d bytes", len(auths)-1, len(c.String()))
	if u := b.mustUser(); u.Email != email {
		t.Errorf("email = %q, want %q", u.Email, email)
	}
	// The other three still complete.
	for i := range 3 {
		if r := b.finish(auths[i]); r.status != http.StatusSeeOther || r.location() != paths[i] {
			t.Errorf("login %d: %d to %q, want 303 to %q", i, r.status, r.location(), paths[i])
		}
	}
	// (Every Set-Cookie of the test is checked against 4096 bytes by the harness.)
}

func TestReturnPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		start string // navigation that starts the login
		want  string
	}{
		{"/private?x=1&y=2", "/private?x=1&y=2"},
		{"/private?q=caf%C3%A9&r=a+b&s=%2F", "/private?q=caf%C3%A9&r=a+b&s=%2F"},
		{"/private?next=%2F%2Fapp.example", "/private?next=%2F%2Fapp.example"}, // an encoded "//" in a query is data
		{"/private?q=a%20b&r=c+d", "/private?q=a%20b&r=c+d"},                   // byte for byte: %20 stays %20
		{"/private?next=//evil.example", "/"},
		{"/login?return_to=" + url.QueryEscape("/private?q=a%20b"), "/private?q=a%20b"},
		{"/login?return_to=" + url.QueryEscape("/private?z=3"), "/private?z=3"},
		{"/login?return_to=/private?z=4", "/private?z=4"},
		{"/login?return_to=%2Fadmin", "/admin"},
		{"/login", "/"},
		{"/login?return_to=", "/"},
		{"/login?return_to=%2Fa&return_to=%2Fb", "/"},
		{"/login?return_to=https%3A%2F%2Fevil.example%2F", "/"},
		{"/login?return_to=%2F%2Fevil.example", "/"},
	}
	for _, tt := range tests {
		b := h.app.newBrowser()
		if got := b.login(tt.start); got != tt.want {
			t.Errorf("login from %s lands on %q, want %q", tt.start, got, tt.want)
		}
	}
}

func TestOpenRedirectPayloads(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("testdata", "openredirects.txt"))
	if err != nil {
		t.Fatalf("the open redirect payloads: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	// One payload a line, the first being the empty string.
	var payloads []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		p, err := url.QueryUnescape(line)
		if err != nil {
			p = line
		}
		payloads = append(payloads, p)
	}
	if len(payloads) != 559 {
		t.Fatalf("read %d payloads, want 559", len(payloads))
	}

	// 559 logins take a while on a loaded machine: a real clock, so that
	// the ID tokens' iat never runs ahead of a frozen one.
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.Now = time.Now }})
	b := h.app.newBrowser()
	for _, p := range payloads {
		h.clock.CatchUp() // 559 logins may take over a minute under -race on a busy machine
		start := b.get("/login?return_to=" + url.QueryEscape(p))
		if start.status != http.StatusFound || !strings.HasPrefix(start.location(), h.provider.URL+"/authorize?") {
			t.Errorf("return_to %q: /login answered %d to %q, want 302 to the provider", p, start.status, start.location())
			continue
		}
		r := b.finish(start.location())
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("return_to %q: landed with %d on %q, want 303 to %q", p, r.status, r.location(), "/")
		}
	}
	t.Logf("%d payloads", len(payloads))
}

func TestRequireUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{defaultErrors: true})
	alice := pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true}
	tests := []struct {
		name  string
		user  pipatest.User
		admin int // AllowEmails("alice@example.com")
		staff int // AllowEmailDomains("example.com")
		ids   int // AllowUserIDs(alice's subject)
	}{
		{"alice", alice, 200, 200, 200},
		{"alice in capitals", pipatest.User{Name: "alice", Email: "ALICE@Example.COM", EmailVerified: true, ShareEmail: true}, 200, 200, 200},
		{"alice unverified", pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: false, ShareEmail: true}, 403, 403, 200},
		{"alice not sharing", pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true}, 403, 403, 200},
		{"bob", pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"double @", pipatest.User{Name: "mallory", Email: "alice@example.com@example.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"a@b@example.com", pipatest.User{Name: "mallory", Email: "a@b@example.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"subdomain", pipatest.User{Name: "carol", Email: "carol@sub.example.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"look-alike domain", pipatest.User{Name: "carol", Email: "carol@evilexample.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.provider.SetUser(tt.user)
			b := h.app.newBrowser()
			if got := b.login("/admin"); got != "/admin" {
				t.Errorf("login lands on %q, want /admin", got)
			}
			for _, c := range []struct {
				path string
				want int
			}{{"/admin", tt.admin}, {"/staff", tt.staff}, {"/ids", tt.ids}} {
				r := b.get(c.path)
				if r.status != c.want {
					t.Errorf("GET %s: %d, want %d", c.path, r.status, c.want)
					continue
				}
				if r.status == http.StatusForbidden {
					if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
						t.Errorf("GET %s: Content-Type %q, want the HTML error page", c.path, ct)
					}
					if !strings.Contains(r.body, "403 Forbidden") {
						t.Errorf("GET %s: the page does not say 403 Forbidden:\n%s", c.path, r.body)
					}
				}
			}
		})
	}
	b := h.app.newBrowser()
	if r := b.get("/admin"); r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
		t.Errorf("GET /admin logged out: %d to %q, want 302 to the provider", r.status, r.location())
	}
	if r := b.get("/admin", "Accept", "application/json"); r.status != http.StatusUnauthorized {
		t.Errorf("GET /admin logged out as an API client: %d, want 401", r.status)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	var postLogout string
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		postLogout = strings.TrimSuffix(cfg.RedirectURL, "/callback") + "/"
		cfg.PostLogoutRedirectURL = postLogout
	}})
	b := h.app.newBrowser()
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
	b := h.app.newBrowser()
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
	b := h.app.newBrowser()
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
	b := h.app.newBrowser()
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

func TestFailuresAreLoggedWithoutSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	failures := []struct {
		name     string
		behavior pipatest.Behavior
		edit     func(q url.Values)
	}{
		{"token endpoint 500", pipatest.Behavior{TokenStatus: 500}, nil},
		{"invalid_grant", pipatest.Behavior{TokenStatus: 400}, nil},
		{"wrong nonce", pipatest.Behavior{WrongNonce: true}, nil},
		{"bad signature", pipatest.Behavior{BadSignature: true}, nil},
		{"bad at_hash", pipatest.Behavior{BadAtHash: true}, nil},
		{"no id_token", pipatest.Behavior{OmitIDToken: true}, nil},
		{"wrong audience", pipatest.Behavior{WrongAudience: true}, nil},
		{"user_id mismatch", pipatest.Behavior{UserID: "someone-else"}, nil},
		{"access_denied", pipatest.Behavior{AuthorizeError: "access_denied"}, nil},
		{"wrong iss", pipatest.Behavior{}, func(q url.Values) { q.Set("iss", "https://evil.example") }},
		{"unknown state", pipatest.Behavior{}, func(q url.Values) { q.Set("state", rand.Text()) }},
		{"repeated code", pipatest.Behavior{}, func(q url.Values) { q["code"] = append(q["code"], q.Get("code")) }},
	}
	failed := func() int { return strings.Count(h.logs.String(), "login failed") }
	for _, f := range failures {
		b := h.app.newBrowser()
		auth := b.startLogin("/private")
		h.setBehavior(f.behavior)
		cb := b.authorize(auth)
		if f.edit != nil {
			cb = withQuery(t, cb, f.edit)
		}
		n := failed()
		r := b.get(cb)
		h.setBehavior(pipatest.Behavior{})
		if r.status < 400 {
			t.Errorf("%s: callback answered %d, want an error", f.name, r.status)
		}
		if got := failed(); got != n+1 {
			t.Errorf("%s: %d new \"login failed\" log lines, want 1", f.name, got-n)
		}
		last := h.logs.String()
		last = last[strings.LastIndex(last, "login failed"):]
		if i := strings.IndexByte(last, '\n'); i >= 0 {
			last = last[:i]
		}
		if !strings.Contains(last, "reason=") {
			t.Errorf("%s: the log line has no reason: %s", f.name, last)
		}
		h.app.takeErrors()
	}
	codes, tokens := h.secrets.counts()
	if codes == 0 || tokens == 0 {
		t.Fatalf("recorded %d codes and %d tokens: the leak checks would be vacuous", codes, tokens)
	}
	h.checkLogs()
}

func TestMountedUnderPrefix(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{prefix: "/auth"})
	b := h.app.newBrowser()
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
	b2 := h.app.newBrowser()
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
			b := h.app.newBrowser()
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
	b := h.app.newBrowser()
	r := b.finish(b.startLogin("/private"))
	if r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
	}
	c := r.setCookie("pipaauth")
	if c == nil {
		t.Fatalf("no pipaauth cookie: %q", r.header.Values("Set-Cookie"))
	}
	if c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie = %q, want HttpOnly, SameSite=Lax and not Secure", c.String())
	}
	if u := b.mustUser(); u.ID != h.subject("alice") {
		t.Errorf("user = %+v, want alice", u)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.IdleTimeout = 30 * time.Minute }})
	b := h.app.newBrowser()
	b.login("/private")
	// Requests every 20 minutes keep the session alive well past 30 minutes.
	for i := range 4 {
		h.clock.Advance(20 * time.Minute)
		if _, status := b.user(); status != http.StatusOK {
			t.Fatalf("request %d, %v after login: %d, want 200 (the idle timeout slides)", i, time.Duration(i+1)*20*time.Minute, status)
		}
	}
	h.clock.Advance(30*time.Minute + time.Second)
	b.mustBeLoggedOut()
}
