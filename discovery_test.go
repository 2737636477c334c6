package pipaauth_test

// LazyDiscovery: an application that starts while PiPA is down, keeps its
// users' sessions, answers 503 to logins until discovery succeeds, and
// never uses a bad discovery document.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

const discoveryPath = "/.well-known/openid-configuration"

// flakyPiPA is a pipatest provider served through a front server that the
// test can take down (every connection is cut) or hold (discovery requests
// wait at a gate), and that counts discovery requests.
type flakyPiPA struct {
	provider *pipatest.Server // never started: served through front
	front    *httptest.Server
	down     atomic.Bool
	fetches  atomic.Int32 // discovery requests received
	served   atomic.Int32 // discovery documents served (good or bad)

	mu   sync.Mutex
	gate chan struct{} // when not nil, discovery requests wait until it is closed
}

func newFlakyPiPA(t *testing.T) *flakyPiPA {
	t.Helper()
	p := &flakyPiPA{provider: pipatest.NewUnstartedServer()}
	t.Cleanup(p.provider.Close)
	h := p.provider.Handler() // unstarted: the issuer is the front's URL
	p.front = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		disc := r.URL.Path == discoveryPath
		if disc {
			p.fetches.Add(1)
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			if gate != nil {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
		}
		if p.down.Load() {
			// Down: cut the connection, as a crashed PiPA would.
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		h.ServeHTTP(w, r)
		if disc {
			p.served.Add(1)
		}
	}))
	t.Cleanup(p.front.Close)
	return p
}

// hold makes discovery requests wait; the returned func lets them go.
func (p *flakyPiPA) hold() (release func()) {
	g := make(chan struct{})
	p.mu.Lock()
	p.gate = g
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.gate = nil
			p.mu.Unlock()
			close(g)
		})
	}
}

// lazyApp is an application (TLS, on loopback) whose Auth talks to a
// flakyPiPA, with short discovery retries, its events and logs recorded.
type lazyApp struct {
	srv    *httptest.Server
	auth   *pipaauth.Auth
	events *eventLog
	logs   *syncBuffer
	cancel context.CancelFunc // ends the ctx given to New

	mu       sync.Mutex
	tokenErr error // what Token returned on the last GET /token
}

// newLazyApp builds the Auth with keys (nil: fresh ones) and, when lazy,
// LazyDiscovery, then edit (when not nil); New must return within seconds
// whatever PiPA does. The test's cleanup ends New's ctx and checks that the
// background retries stop.
// retry, when given, is the background backoff's first and longest wait
// (default 20ms and 100ms).
func newLazyApp(t *testing.T, p *flakyPiPA, keys [][]byte, lazy bool, edit func(*pipaauth.Config), retry ...time.Duration) *lazyApp {
	t.Helper()
	a := &lazyApp{events: &eventLog{}, logs: &syncBuffer{}}
	mux := http.NewServeMux()
	a.srv = httptest.NewTLSServer(mux)
	t.Cleanup(a.srv.Close)
	if keys == nil {
		keys = newKeys()
	}
	cfg := pipaauth.Config{
		Issuer:        p.front.URL,
		ClientID:      clientID,
		ClientSecret:  clientSecret,
		RedirectURL:   a.srv.URL + "/callback",
		SessionKeys:   keys,
		HTTPClient:    p.front.Client(),
		Logger:        slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LazyDiscovery: lazy,
		OnEvent:       a.events.record,
	}
	if edit != nil {
		edit(&cfg)
	}
	if len(retry) != 2 {
		retry = []time.Duration{20 * time.Millisecond, 100 * time.Millisecond}
	}
	ctx, cancel := context.WithCancel(pipaauth.WithDiscoveryRetry(context.Background(), retry[0], retry[1]))
	a.cancel = cancel
	type result struct {
		auth *pipaauth.Auth
		err  error
	}
	done := make(chan result, 1)
	go func() {
		auth, err := pipaauth.New(ctx, cfg)
		done <- result{auth, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			cancel()
			t.Fatalf("New: %v", res.err)
		}
		a.auth = res.auth
	case <-time.After(10 * time.Second):
		t.Fatal("New did not return within 10s")
	}
	t.Cleanup(func() {
		cancel()
		if bg := pipaauth.BackgroundDone(a.auth); bg != nil {
			select {
			case <-bg:
			case <-time.After(5 * time.Second):
				t.Error("the background discovery retries did not stop within 5s of New's ctx ending")
			}
		}
	})
	mux.Handle("/login", a.auth.LoginHandler())
	mux.Handle("/callback", a.auth.CallbackHandler())
	mux.Handle("/logout", a.auth.LogoutHandler())
	mux.Handle("/private", a.auth.RequireLogin(http.HandlerFunc(echoUser)))
	mux.Handle("/token", a.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := a.auth.Token(w, r)
		a.mu.Lock()
		a.tokenErr = err
		a.mu.Unlock()
	})))
	mux.Handle("/{$}", text("home"))
	return a
}

// lazyBrowser is a cookie-jar client that trusts the test servers and
// follows no redirect.
type lazyBrowser struct {
	t *testing.T
	c *http.Client
}

func newLazyBrowser(t *testing.T, p *flakyPiPA) *lazyBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &lazyBrowser{t: t, c: &http.Client{
		Transport:     p.front.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       20 * time.Second,
	}}
}

func (b *lazyBrowser) do(method, url string, header ...string) *response {
	b.t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// login logs in through PiPA from a navigation to app's /private and
// returns the user /private then shows.
func (b *lazyBrowser) login(app *lazyApp, p *flakyPiPA) pipaauth.User {
	b.t.Helper()
	r := b.do("GET", app.srv.URL+"/private")
	if r.status != http.StatusFound || !strings.HasPrefix(r.location(), p.front.URL+"/authorize?") {
		b.t.Fatalf("GET /private: %d, Location %q; want 302 to PiPA\n%s", r.status, r.location(), r.body)
	}
	r = b.do("GET", r.location())
	if r.status != http.StatusFound || !strings.HasPrefix(r.location(), app.srv.URL+"/callback?") {
		b.t.Fatalf("authorize: %d, Location %q; want 302 to the callback", r.status, r.location())
	}
	r = b.do("GET", r.location())
	if r.status != http.StatusSeeOther {
		b.t.Fatalf("callback: %d, want 303\n%s", r.status, r.body)
	}
	return b.mustUser(app)
}

func (b *lazyBrowser) mustUser(app *lazyApp) pipaauth.User {
	b.t.Helper()
	r := b.do("GET", app.srv.URL+"/private", "Accept", "application/json")
	var u pipaauth.User
	if r.status != http.StatusOK {
		b.t.Fatalf("GET /private with the session: %d, want 200\n%s", r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &u); err != nil {
		b.t.Fatalf("GET /private: %v in %q", err, r.body)
	}
	return u
}

// eventually polls cond every 10ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// check503 checks an answer for lack of discovery: 503, a Retry-After of
// whole seconds, no redirect, no cookie.
func check503(t *testing.T, what string, r *response) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("%s: %d (Location %q), want 503\n%s", what, r.status, r.location(), r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: Retry-After %q, want whole seconds >= 1", what, r.header.Get("Retry-After"))
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Errorf("%s: Set-Cookie %q, want none", what, r.header.Values("Set-Cookie"))
	}
}

func TestLazyDiscoveryStartsWhilePiPAIsDown(t *testing.T) {
	t.Parallel()
	p := newFlakyPiPA(t)
	p.down.Store(true)
	release := p.hold() // New must return while its discovery request hangs
	app := newLazyApp(t, p, nil, true, nil)
	eventually(t, "no discovery request reached PiPA", func() bool { return p.fetches.Load() >= 1 })
	release()
	b := newLazyBrowser(t, p)

	r := b.do("GET", app.srv.URL+"/private")
	check503(t, "protected navigation", r)
	if !strings.Contains(r.body, "PiPA cannot be reached") || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("protected navigation: %s page %q, want an HTML page saying PiPA cannot be reached", r.header.Get("Content-Type"), r.body)
	}
	r = b.do("POST", app.srv.URL+"/login", "Accept", "application/json")
	check503(t, "API login", r)
	var body struct{ Error, Message string }
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error != "service_unavailable" || body.Message == "" {
		t.Errorf("API login: body %q (%v), want JSON with error service_unavailable and a message", r.body, err)
	}
	check503(t, "callback", b.do("GET", app.srv.URL+"/callback?state=s&code=c"))
	if r := b.do("GET", app.srv.URL+"/private", "Accept", "application/json"); r.status != http.StatusUnauthorized {
		t.Errorf("API request without a session: %d, want 401 as always (it needs nothing from PiPA)", r.status)
	}
	if r := b.do("POST", app.srv.URL+"/logout"); r.status != http.StatusSeeOther || r.location() != "/" {
		t.Errorf("logout: %d to %q, want 303 to /", r.status, r.location())
	}
	got := app.events.take()
	if len(got) != 3 {
		t.Errorf("events %+v, want three login_failed (discovery_failed)", got)
	}
	for _, e := range got {
		if e.Duration <= 0 {
			t.Errorf("event %+v: Duration %v, want > 0", e, e.Duration)
		}
		if e.Kind != pipaauth.EventLoginFailed || e.Reason != pipaauth.ReasonDiscoveryFailed {
			t.Errorf("event %+v, want login_failed with reason %q", e, pipaauth.ReasonDiscoveryFailed)
		}
	}

	// The background keeps trying; once PiPA is back it succeeds on its
	// own, without a request asking, and without a restart.
	n := p.fetches.Load()
	eventually(t, "discovery was not retried while PiPA was down", func() bool { return p.fetches.Load() >= n+2 })
	p.down.Store(false)
	eventually(t, "discovery did not succeed after PiPA came back", func() bool { return p.served.Load() >= 1 })
	select {
	case <-pipaauth.BackgroundDone(app.auth):
	case <-time.After(5 * time.Second):
		t.Fatal("the background retries go on after discovery succeeded")
	}
	n = p.fetches.Load()
	if u := b.login(app, p); u.Email != "alice@example.com" {
		t.Errorf("user after login: %+v, want alice", u)
	}
	if got := p.fetches.Load(); got != n {
		t.Errorf("the login fetched discovery %d more times, want 0 (already applied)", got-n)
	}
	if r := b.do("POST", app.srv.URL+"/logout"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), p.front.URL+"/end_session?") {
		t.Errorf("logout after discovery: %d to %q, want 303 to PiPA's end_session", r.status, r.location())
	}
}

func TestLazyDiscoveryKeepsSessionsWhilePiPAIsDown(t *testing.T) {
	t.Parallel()
	p := newFlakyPiPA(t)
	keys := newKeys()
	b := newLazyBrowser(t, p)
	// Before the restart: PiPA is up and alice logs in.
	before := newLazyApp(t, p, keys, false, nil)
	alice := b.login(before, p)

	// The application restarts during a PiPA outage, with the same keys.
	p.down.Store(true)
	after := newLazyApp(t, p, keys, true, nil)
	check503(t, "a new login", newLazyBrowser(t, p).do("GET", after.srv.URL+"/private"))
	after.events.take()
	for i := range 3 {
		if u := b.mustUser(after); u != alice {
			t.Errorf("request %d during the outage: user %+v, want %+v", i, u, alice)
		}
	}
	if got := after.events.take(); len(got) != 0 {
		t.Errorf("events for requests with a session: %+v, want none", got)
	}
	p.down.Store(false)
	eventually(t, "discovery did not succeed after PiPA came back", func() bool { return p.served.Load() >= 2 })
	if u := b.mustUser(after); u != alice {
		t.Errorf("after the outage: user %+v, want %+v", u, alice)
	}
	if u := newLazyBrowser(t, p).login(after, p); u.ID != alice.ID {
		t.Errorf("a new login after the outage: %+v, want alice", u)
	}
}

func TestLazyDiscoveryBadDocumentIsRetriedNeverHalfApplied(t *testing.T) {
	t.Parallel()
	// Every bad document also points the authorization and end-session
	// endpoints elsewhere and drops PKCE: a half-applied document would
	// send a login or a logout there, or a login without PKCE.
	tests := []struct {
		name string
		bad  func(doc map[string]any)
	}{
		{"issuer mismatch", func(doc map[string]any) { doc["issuer"] = "https://other.example" }},
		{"token_endpoint over http", func(doc map[string]any) {
			doc["token_endpoint"] = strings.Replace(doc["token_endpoint"].(string), "https:", "http:", 1)
		}},
		{"jwks_uri over http", func(doc map[string]any) {
			doc["jwks_uri"] = strings.Replace(doc["jwks_uri"].(string), "https:", "http:", 1)
		}},
		{"no response_type code", func(doc map[string]any) { doc["response_types_supported"] = []string{"id_token"} }},
		{"only private_key_jwt", func(doc map[string]any) {
			doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
		}},
		{"end_session_endpoint over http", func(doc map[string]any) {
			doc["end_session_endpoint"] = "http://evil.example/logout"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newFlakyPiPA(t)
			var bad atomic.Bool
			bad.Store(true)
			p.provider.SetBehavior(pipatest.Behavior{DiscoveryHook: func(doc map[string]any) {
				if !bad.Load() {
					return
				}
				doc["authorization_endpoint"] = "https://evil.example/authorize"
				if _, ok := doc["end_session_endpoint"]; ok {
					doc["end_session_endpoint"] = "https://evil.example/logout"
				}
				delete(doc, "code_challenge_methods_supported")
				tt.bad(doc)
			}})
			app := newLazyApp(t, p, nil, true, nil)
			b := newLazyBrowser(t, p)
			eventually(t, "the bad document was not fetched again", func() bool { return p.served.Load() >= 3 })
			check503(t, "login with a bad document", b.do("GET", app.srv.URL+"/private"))
			if r := b.do("POST", app.srv.URL+"/logout"); r.location() != "/" {
				t.Errorf("logout with a bad document: %d to %q, want 303 to /", r.status, r.location())
			}
			if logs := app.logs.String(); !strings.Contains(logs, "discovery failed") {
				t.Errorf("the bad document was not logged:\n%s", logs)
			}

			bad.Store(false)
			var r *response
			eventually(t, "logins still fail after the document was fixed", func() bool {
				r = b.do("GET", app.srv.URL+"/login")
				return r.status != http.StatusServiceUnavailable
			})
			if r.status != http.StatusFound || !strings.HasPrefix(r.location(), p.front.URL+"/authorize?") || !strings.Contains(r.location(), "code_challenge=") {
				t.Fatalf("login after the fix: %d to %q, want 302 to PiPA with PKCE", r.status, r.location())
			}
			if r := b.do("POST", app.srv.URL+"/logout"); !strings.HasPrefix(r.location(), p.front.URL+"/end_session") {
				t.Errorf("logout after the fix: %d to %q, want PiPA's end_session", r.status, r.location())
			}
		})
	}
}

// stacksIn counts the goroutines whose stack holds fn.
func stacksIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// Not parallel: it counts goroutines by function, alone in the process.
func TestLazyDiscoveryConcurrentNeedsShareOneFetch(t *testing.T) {
	const n = 8
	for _, down := range []bool{false, true} {
		t.Run("PiPA down="+strconv.FormatBool(down), func(t *testing.T) {
			p := newFlakyPiPA(t)
			p.down.Store(down)
			release := p.hold()
			defer release()
			app := newLazyApp(t, p, nil, true, nil)
			statuses := make(chan int, n)
			for range n {
				go func() {
					req, _ := http.NewRequest("GET", app.srv.URL+"/private", nil)
					c := &http.Client{Transport: p.front.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
					resp, err := c.Do(req)
					if err != nil {
						statuses <- 0
						return
					}
					resp.Body.Close()
					statuses <- resp.StatusCode
				}()
			}
			// All n requests and the background retries wait for the one
			// fetch that PiPA holds.
			// (The fetch reaches PiPA after its TLS handshake: wait for it
			// too, or a loaded machine counts 0.)
			eventually(t, "the requests are not all waiting for discovery", func() bool {
				return stacksIn("pipaauth.(*Auth).discover(") >= n+1 && p.fetches.Load() >= 1
			})
			if got := p.fetches.Load(); got != 1 {
				t.Errorf("discovery requests while %d requests wait: %d, want 1", n, got)
			}
			release()
			want := http.StatusFound
			if down {
				want = http.StatusServiceUnavailable
			}
			for range n {
				if s := <-statuses; s != want {
					t.Errorf("a waiting request got %d, want %d", s, want)
				}
			}
			if got := p.fetches.Load(); !down && got != 1 {
				t.Errorf("discovery requests: %d, want 1", got)
			}
		})
	}
}

// Not parallel: it checks that no discovery goroutine is left in the
// process.
func TestLazyDiscoveryGoroutinesStop(t *testing.T) {
	leftover := func() int {
		return stacksIn("pipaauth.(*Auth).background(") + stacksIn("pipaauth.(*Auth).runDiscovery(")
	}
	t.Run("New's ctx ends", func(t *testing.T) {
		p := newFlakyPiPA(t)
		p.down.Store(true)
		app := newLazyApp(t, p, nil, true, nil)
		eventually(t, "discovery was not retried", func() bool { return p.fetches.Load() >= 3 })
		app.cancel()
		select {
		case <-pipaauth.BackgroundDone(app.auth):
		case <-time.After(5 * time.Second):
			t.Fatal("the background retries did not stop when New's ctx ended")
		}
		eventually(t, "discovery goroutines are left", func() bool { return leftover() == 0 })
		// Requests still discover on their own.
		p.down.Store(false)
		b := newLazyBrowser(t, p)
		var r *response
		eventually(t, "no login after New's ctx ended", func() bool {
			r = b.do("GET", app.srv.URL+"/login")
			return r.status == http.StatusFound
		})
		eventually(t, "discovery goroutines are left after a request's fetch", func() bool { return leftover() == 0 })
	})
	t.Run("discovery succeeds", func(t *testing.T) {
		p := newFlakyPiPA(t)
		app := newLazyApp(t, p, nil, true, nil)
		select {
		case <-pipaauth.BackgroundDone(app.auth):
		case <-time.After(10 * time.Second):
			t.Fatal("the background goroutine did not stop after discovery succeeded")
		}
		eventually(t, "discovery goroutines are left", func() bool { return leftover() == 0 })
	})
}

func TestLazyDiscoveryStillChecksTheConfig(t *testing.T) {
	t.Parallel()
	p := newFlakyPiPA(t)
	p.down.Store(true)
	for name, edit := range map[string]func(*pipaauth.Config){
		"no client id":            func(c *pipaauth.Config) { c.ClientID = "" },
		"http issuer":             func(c *pipaauth.Config) { c.Issuer = "http://pipa.example" },
		"short session key":       func(c *pipaauth.Config) { c.SessionKeys = [][]byte{[]byte("short"), []byte("0123456789abcdef")} },
		"redirect URL over http":  func(c *pipaauth.Config) { c.RedirectURL = "http://app.example/callback" },
		"negative exchange limit": func(c *pipaauth.Config) { c.ExchangeTimeout = -1 },
	} {
		cfg := pipaauth.Config{
			Issuer: p.front.URL, ClientID: clientID, ClientSecret: clientSecret,
			RedirectURL: "https://app.example/callback", SessionKeys: newKeys(), LazyDiscovery: true,
		}
		edit(&cfg)
		ctx, cancel := context.WithCancel(context.Background())
		a, err := pipaauth.New(ctx, cfg)
		cancel()
		if !errors.Is(err, pipaauth.ErrConfig) || a != nil {
			t.Errorf("%s: New = %v, %v; want nil and ErrConfig", name, a, err)
		}
	}
}

// A refresh needed before discovery succeeded fails with ErrDiscovery and
// keeps the session.
func TestLazyDiscoveryRefreshBeforeDiscovery(t *testing.T) {
	t.Parallel()
	p := newFlakyPiPA(t)
	var offset atomic.Int64
	keys := newKeys()
	edit := func(c *pipaauth.Config) {
		c.KeepTokens = true
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}
	b := newLazyBrowser(t, p)
	b.login(newLazyApp(t, p, keys, false, edit), p)

	// The same application restarted with LazyDiscovery, PiPA down.
	p.down.Store(true)
	app := newLazyApp(t, p, keys, true, edit)
	offset.Add(int64(2 * time.Hour)) // the access token has expired
	r := b.do("GET", app.srv.URL+"/token")
	if r.status != http.StatusOK {
		t.Fatalf("GET /token: %d, want 200 (the guard passes)", r.status)
	}
	app.mu.Lock()
	err := app.tokenErr
	app.mu.Unlock()
	if !errors.Is(err, pipaauth.ErrDiscovery) {
		t.Errorf("Token: %v, want ErrDiscovery", err)
	}
	if got := app.events.take(); len(got) != 1 || got[0].Kind != pipaauth.EventRefreshFailed || got[0].Reason != pipaauth.ReasonDiscoveryFailed {
		t.Errorf("events %+v, want one refresh_failed (discovery_failed)", got)
	}
	if c := r.header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("the session was rewritten or cleared: Set-Cookie %q", c)
	}
	if u := b.mustUser(app); u.Email != "alice@example.com" {
		t.Errorf("after the failed refresh: %+v, want alice still logged in", u)
	}
}

// During an outage, requests do not each fetch the discovery document: at
// most one fetch per retry interval.
func TestLazyDiscoveryRequestsDoNotHammerPiPA(t *testing.T) {
	t.Parallel()
	p := newFlakyPiPA(t)
	p.down.Store(true)
	app := newLazyApp(t, p, nil, true, nil, time.Hour, time.Hour)
	b := newLazyBrowser(t, p)
	check503(t, "first login", b.do("GET", app.srv.URL+"/login"))
	n := p.fetches.Load()
	if n < 1 || n > 2 {
		t.Fatalf("discovery requests after the first login: %d, want 1 or 2", n)
	}
	for i := range 5 {
		check503(t, "login "+strconv.Itoa(i), b.do("GET", app.srv.URL+"/login"))
	}
	if got := p.fetches.Load(); got != n {
		t.Errorf("5 logins within the retry interval fetched discovery %d more times, want 0", got-n)
	}
}
