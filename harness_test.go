package pipaauth_test

// The harness of the full-flow tests over real HTTP (login_test.go,
// callback_test.go, session_test.go, returnto_test.go, logout_test.go…): a
// pipatest provider and an application server, both httptest TLS servers,
// and a cookie-jar "browser" that steps through every redirect itself (app →
// provider authorize → app callback → return path).
//
// Every harness also checks, for every application response and at the end
// of the test for the whole log, that no authorization code, client secret or
// token issued during the test leaks, and that no internal error string
// reaches a response body.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
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

// syncBuffer is a goroutine-safe log sink: the one log buffer of this
// package's tests, for a Config.Logger whose handlers log from the servers'
// goroutines.
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
	plainHTTP     bool                       // a plain-HTTP provider, hence app servers and InsecureAllowHTTP
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

// newApp starts an application server (newTestApp, over TLS unless the
// harness is plain HTTP) whose Config logs into the harness and runs on its
// clock, and mounts the handlers.
func (h *harness) newApp(s setup) *app {
	t := h.t
	t.Helper()
	a := &app{h: h}
	ta := newTestApp(t, h.provider, func(cfg *pipaauth.Config) {
		cfg.RedirectURL = strings.TrimSuffix(cfg.RedirectURL, "/callback") + s.prefix + "/callback"
		cfg.HTTPClient = h.provider.Client()
		cfg.Logger = h.logger()
		cfg.Now = h.clock.Now
		if s.prefix != "" {
			cfg.LoginPath = s.prefix + "/login"
		}
		if s.configure != nil {
			s.configure(cfg)
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
		a.cfg = *cfg
	})
	a.srv, a.url, a.auth = ta.srv, ta.srv.URL, ta.auth
	a.cookieName = sessionCookieName(a.cfg)

	auth, mux := a.auth, ta.mux
	mux.Handle(s.prefix+"/login", auth.LoginHandler())
	mux.Handle(s.prefix+"/callback", auth.CallbackHandler())
	// Mounted for every method, so that the handler's own method check is
	// what a GET meets.
	mux.Handle(s.prefix+"/logout", auth.LogoutHandler())
	mux.Handle("/private", auth.RequireLogin(http.HandlerFunc(echoUser)))
	mux.Handle("/admin", auth.RequireUser(pipaauth.AllowEmails("alice@example.com"))(text("admin")))
	mux.Handle("/staff", auth.RequireUser(pipaauth.AllowEmailDomains("example.com"))(text("staff")))
	mux.Handle("/ids", auth.RequireUser(pipaauth.AllowUserIDs(h.subject("alice")))(text("ids")))
	if a.cfg.Scopes == nil || slices.Contains(a.cfg.Scopes, "openid") {
		// Step-up (RequireRecentLogin), alone and with RequireUser either way.
		recent := auth.RequireRecentLogin(stepUpMaxAge)
		onlyAlice := auth.RequireUser(pipaauth.AllowEmails("alice@example.com"))
		mux.Handle("/recent", recent(http.HandlerFunc(echoUser)))
		mux.Handle("/recent-then-user", recent(onlyAlice(text("recent-then-user"))))
		mux.Handle("/user-then-recent", onlyAlice(recent(text("user-then-recent"))))
	}
	mux.Handle("/{$}", text("home"))
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

// browser is a cookie-jar client that does not follow redirects. It reports
// its failures against the (sub)test it was made for.
type browser struct {
	t     *testing.T
	h     *harness
	app   *app
	jar   *cookiejar.Jar
	c     *http.Client
	fatal func(format string, args ...any)
}

// newBrowser returns a browser for a's server, serving the (sub)test t: its
// failures are reported against t, not against the test that made the
// harness.
func (a *app) newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{
		t:   t,
		h:   a.h,
		app: a,
		jar: jar,
		c: &http.Client{
			Transport:     a.h.provider.Client().Transport,
			Jar:           jar,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       20 * time.Second,
		},
		fatal: t.Fatalf,
	}
}

// do sends a request; target is a path on the browser's app or an absolute
// URL. header holds name, value pairs.
func (b *browser) do(ctx context.Context, method, target string, header ...string) *response {
	b.t.Helper()
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
	b.t.Helper()
	b.t.Errorf(format, args...)
}

func (b *browser) get(target string, header ...string) *response {
	b.t.Helper()
	return b.do(context.Background(), http.MethodGet, target, header...)
}

func (b *browser) post(target string, header ...string) *response {
	b.t.Helper()
	return b.do(context.Background(), http.MethodPost, target, header...)
}

// startLogin navigates to path and expects a redirect to PiPA's
// authorization endpoint, which it returns.
func (b *browser) startLogin(path string) string {
	b.t.Helper()
	r := b.get(path)
	if r.status != http.StatusFound || !strings.HasPrefix(r.location(), b.h.provider.URL+"/authorize?") {
		b.fatal("GET %s: %d, Location %q; want 302 to %s/authorize\n%s", path, r.status, r.location(), b.h.provider.URL, r.body)
	}
	return r.location()
}

// authorize visits PiPA's authorization endpoint and returns the callback
// URL it redirects to, recording the code.
func (b *browser) authorize(authURL string) string {
	b.t.Helper()
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
	b.t.Helper()
	return b.get(b.authorize(authURL))
}

// login logs in from a navigation to path and returns where the callback
// sends the browser.
func (b *browser) login(path string) string {
	b.t.Helper()
	r := b.finish(b.startLogin(path))
	if r.status != http.StatusSeeOther {
		b.fatal("login from %s: callback answered %d, want 303; errors %v\n%s", path, r.status, b.app.takeErrors(), r.body)
	}
	return r.location()
}

// user fetches /private as an API client: the user and 200, or the status.
func (b *browser) user() (pipaauth.User, int) {
	b.t.Helper()
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
	b.t.Helper()
	u, status := b.user()
	if status != http.StatusOK {
		b.fatal("GET /private as an API client: %d, want 200 (logged in)", status)
	}
	return u
}

func (b *browser) mustBeLoggedOut() {
	b.t.Helper()
	if u, status := b.user(); status != http.StatusUnauthorized {
		b.fatal("GET /private as an API client: %d (user %+v), want 401 (not logged in)", status, u)
	}
}

// cookie returns the session cookie's value in the jar.
func (b *browser) cookie() string {
	b.t.Helper()
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

// withoutAuthTime returns u with AuthTime zeroed, after checking that it is
// set: tests that compare whole users check AuthTime on their own.
func withoutAuthTime(t *testing.T, u pipaauth.User) pipaauth.User {
	t.Helper()
	if u.AuthTime.IsZero() {
		t.Errorf("user %+v has no AuthTime", u)
	}
	u.AuthTime = time.Time{}
	return u
}

// withoutIDTokenHint returns h, less the id_token_hint of a Location to the
// provider's end-session endpoint: the ID token is meant for PiPA there
// (RP-Initiated Logout 1.0), and the logout tests check it is the login's.
func (h *harness) withoutIDTokenHint(hdr http.Header) http.Header {
	loc := hdr.Get("Location")
	if !strings.HasPrefix(loc, h.provider.URL+"/end_session?") {
		return hdr
	}
	u, err := url.Parse(loc)
	if err != nil {
		return hdr
	}
	q := u.Query()
	q.Del("id_token_hint")
	u.RawQuery = q.Encode()
	c := hdr.Clone()
	c.Set("Location", u.String())
	return c
}

// sessionCookieName is the session cookie's name for cfg, as documented at
// Config.CookieName: by default "pipaauth-" and 12 hex digits of
// SHA-256(ClientID), with "__Host-" when the cookie is Secure.
func sessionCookieName(cfg pipaauth.Config) string {
	name := cfg.CookieName
	if name == "" {
		sum := sha256.Sum256([]byte(cfg.ClientID))
		name = "pipaauth-" + hex.EncodeToString(sum[:6])
	}
	if !strings.HasPrefix(cfg.RedirectURL, "http://") && !strings.HasPrefix(name, "__Host-") {
		name = "__Host-" + name
	}
	return name
}

// plainCookieName is the session cookie of the default client over plain
// HTTP (InsecureAllowHTTP): no __Host- prefix.
var plainCookieName = sessionCookieName(pipaauth.Config{ClientID: clientID, RedirectURL: "http://127.0.0.1/callback"})
