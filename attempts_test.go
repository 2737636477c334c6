package pipaauth_test

// Tests of login attempts in cookies of their own (issue 7): concurrent
// starts in one browser, the Cookie header bound, same-origin login starts,
// a store untouched before a login succeeds, and single-use callbacks.

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// memStore is an in-memory gorilla sessions.Store shaped like the
// server-side ones (redistore and friends): the cookie carries a signed id,
// the values live in the store, an unknown id is a new session. It counts
// the calls made to it.
type memStore struct {
	mu     sync.Mutex
	codecs []securecookie.Codec
	data   map[string]map[any]any
	next   int
	loads  atomic.Int64
	saves  atomic.Int64
}

func newMemStore() *memStore {
	return &memStore{codecs: securecookie.CodecsFromPairs(securecookie.GenerateRandomKey(32)), data: map[string]map[any]any{}}
}

func (s *memStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return s.New(r, name)
}

func (s *memStore) New(r *http.Request, name string) (*sessions.Session, error) {
	s.loads.Add(1)
	sess := sessions.NewSession(s, name)
	sess.Options = &sessions.Options{Path: "/", MaxAge: 3600}
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	if err := securecookie.DecodeMulti(name, c.Value, &sess.ID, s.codecs...); err != nil {
		return sess, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.data[sess.ID]; ok {
		sess.Values = maps.Clone(v)
		sess.IsNew = false
	}
	return sess, nil
}

func (s *memStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	s.saves.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.Options.MaxAge < 0 {
		delete(s.data, sess.ID)
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	if sess.ID == "" {
		s.next++
		sess.ID = fmt.Sprintf("id-%d", s.next)
	}
	s.data[sess.ID] = maps.Clone(sess.Values)
	v, err := securecookie.EncodeMulti(sess.Name(), sess.ID, s.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), v, sess.Options))
	return nil
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

// modes are the two places a session lives.
var modes = []struct {
	name  string
	store func() *memStore // nil: cookie sessions
}{
	{"cookie", nil},
	{"store", newMemStore},
}

func setupFor(store *memStore) setup {
	if store == nil {
		return setup{}
	}
	return setup{configure: func(cfg *pipaauth.Config) { cfg.SessionStore = store }}
}

// barrier is a RoundTripper that holds requests matching match until n of
// them are on their way: the cookie jar has already put its cookies on each,
// so none of them carries what another one's response sets. It models tabs
// restored at the same instant.
type barrier struct {
	base  http.RoundTripper
	match func(*http.Request) bool
	n     int

	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newBarrier(base http.RoundTripper, n int, match func(*http.Request) bool) *barrier {
	return &barrier{base: base, match: match, n: n, all: make(chan struct{})}
}

func (b *barrier) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.match(r) {
		b.mu.Lock()
		b.arrived++
		if b.arrived == b.n {
			close(b.all)
		}
		b.mu.Unlock()
		select {
		case <-b.all:
		case <-time.After(10 * time.Second):
			return nil, errors.New("barrier: the other requests never came")
		}
	}
	return b.base.RoundTrip(r)
}

// Logins started at the same instant in one browser (one cookie jar) all
// complete, each landing where it started, in both session modes.
func TestSimultaneousLoginsInOneBrowser(t *testing.T) {
	t.Parallel()
	const rounds = 5
	for _, mode := range modes {
		for _, n := range []int{2, 4, 8} {
			t.Run(fmt.Sprintf("%s/%d", mode.name, n), func(t *testing.T) {
				t.Parallel()
				for round := range rounds {
					var store *memStore
					if mode.store != nil {
						store = mode.store()
					}
					h := newHarness(t, setupFor(store))
					b := h.app.newBrowser(t)
					b.c.Transport = newBarrier(b.c.Transport, n, func(r *http.Request) bool { return r.URL.Path == "/private" && r.URL.Query().Has("tab") })
					b.fatal = func(format string, args ...any) {
						t.Errorf(format, args...)
						runtime.Goexit()
					}
					var wg sync.WaitGroup
					var completed atomic.Int64
					for i := range n {
						wg.Add(1)
						go func() {
							defer wg.Done()
							path := fmt.Sprintf("/private?tab=%d", i)
							r := b.finish(b.startLogin(path))
							if r.status != http.StatusSeeOther || r.location() != path {
								t.Errorf("round %d, tab %d: callback %d to %q, want 303 to %s", round, i, r.status, r.location(), path)
								return
							}
							completed.Add(1)
						}()
					}
					wg.Wait()
					if got := completed.Load(); got != int64(n) {
						t.Fatalf("round %d: %d of %d simultaneous logins completed; errors %v", round, got, n, h.app.takeErrors())
					}
					if u := b.mustUser(); u.ID != h.subject("alice") {
						t.Errorf("user = %+v, want alice", u)
					}
				}
			})
		}
	}
}

// cookieHeader is the Cookie header line the browser sends to its app.
func (b *browser) cookieHeader() string {
	u, _ := url.Parse(b.app.url)
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return "Cookie: " + strings.Join(parts, "; ")
}

// maxCookieHeader is the bound docs/security.md gives on the Cookie header line pipaauth's
// cookies make (8 KiB with CRLF).
const maxCookieHeader = 8190

// After 50 login starts never finished, each with the longest return path
// kept, the browser's Cookie header stays within the documented bound even
// with the session cookie at its largest.
func TestCookieHeaderAfterManyStarts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	b.login("/private")
	session := len(h.app.cookieName) + 1 + len(b.cookie())
	longest := "/private?pad=" + strings.Repeat("x", 1024-len("/private?pad="))
	// Short paths first, then the longest: the worst mix, as the short
	// attempts that fit stay beside the newest long one.
	for _, path := range []string{"/private?tab=1", longest} {
		for range 50 {
			b.startLogin("/login?return_to=" + url.QueryEscape(path))
		}
		header := b.cookieHeader()
		attempts := strings.Count(header, h.app.cookieName+"-login-")
		if attempts > pipaauth.MaxPendingLogins || attempts < 1 {
			t.Errorf("return path of %d bytes: %d attempt cookies after 50 starts, want 1 to %d", len(path), attempts, pipaauth.MaxPendingLogins)
		}
		// The session cookie at its largest: a Set-Cookie line of 4096 bytes
		// carries at most 4096-len("Path=/") of name=value.
		worst := len(header) - session + 4096
		t.Logf("return path of %d bytes: %d attempt cookies, Cookie header %d bytes, %d with the largest session cookie", len(path), attempts, len(header), worst)
		if worst > maxCookieHeader {
			t.Errorf("return path of %d bytes: the Cookie header can reach %d bytes, more than %d", len(path), worst, maxCookieHeader)
		}
	}
	// The longest path is honoured, byte for byte; one more byte is not.
	if got := b.finish(b.startLogin("/login?return_to=" + url.QueryEscape(longest))); got.location() != longest {
		t.Errorf("a %d-byte return path lands on %.40q…, want itself", len(longest), got.location())
	}
	if got := b.finish(b.startLogin("/login?return_to=" + url.QueryEscape(longest+"x"))); got.location() != "/" {
		t.Errorf("a %d-byte return path lands on %.40q…, want /", len(longest)+1, got.location())
	}
	if got := h.app.newBrowser(t).login(longest); got != longest {
		t.Errorf("RequireLogin from a %d-byte path lands on %.40q…, want itself", len(longest), got)
	}
}

// A cross-site POST to /login is refused and leaves the session alone; a
// same-origin one starts a login; neither a GET nor a POST start touches an
// existing session.
func TestLoginStartIsSameOrigin(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var store *memStore
			if mode.store != nil {
				store = mode.store()
			}
			h := newHarness(t, setupFor(store))
			b := h.app.newBrowser(t)
			b.login("/private")
			before := b.cookie()
			for _, hdr := range [][]string{
				{"Sec-Fetch-Site", "cross-site"},
				{"Origin", "https://evil.example"},
			} {
				r := b.post("/login?return_to=%2Fadmin", hdr...)
				if r.status != http.StatusForbidden || len(r.header.Values("Set-Cookie")) != 0 {
					t.Errorf("POST /login with %s: %d, Set-Cookie %q; want 403 and no cookie", hdr[0], r.status, r.header.Values("Set-Cookie"))
				}
				if errs := h.app.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrCrossOrigin) {
					t.Errorf("POST /login with %s: errors %v, want ErrCrossOrigin", hdr[0], errs)
				}
			}
			for _, tt := range []struct {
				method string
				header []string
			}{
				{http.MethodPost, []string{"Sec-Fetch-Site", "same-origin"}},
				{http.MethodGet, []string{"Sec-Fetch-Site", "cross-site"}}, // a link on another site
				{http.MethodGet, nil},
			} {
				r := b.do(t.Context(), tt.method, "/login", tt.header...)
				if r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
					t.Errorf("%s /login %v: %d to %q, want 302 to PiPA", tt.method, tt.header, r.status, r.location())
				}
				if c := r.setCookie(h.app.cookieName); c != nil {
					t.Errorf("%s /login %v sets the session cookie %v", tt.method, tt.header, c)
				}
			}
			if b.cookie() != before {
				t.Error("the session cookie changed")
			}
			if u := b.mustUser(); u.ID != h.subject("alice") {
				t.Errorf("user = %+v, want alice still logged in", u)
			}
		})
	}
}

// Anonymous traffic (navigations that start logins, the login page, API
// calls) never reaches the store; only a completed login writes to it.
func TestStoreUntouchedByAnonymousTraffic(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	h := newHarness(t, setupFor(store))
	b := h.app.newBrowser(t)
	for i := range 100 {
		b.startLogin(fmt.Sprintf("/private?n=%d", i))
		b.startLogin(fmt.Sprintf("/login?return_to=%%2Fprivate%%3Fn%%3D%d", i))
		r := b.get("/private", "Accept", "application/json")
		if r.status != http.StatusUnauthorized || len(r.header.Values("Set-Cookie")) != 0 {
			t.Fatalf("API call: %d, Set-Cookie %q; want 401 and no cookie", r.status, r.header.Values("Set-Cookie"))
		}
	}
	if l, s, n := store.loads.Load(), store.saves.Load(), store.len(); l != 0 || s != 0 || n != 0 {
		t.Fatalf("after 300 anonymous requests the store saw %d loads and %d saves and holds %d sessions, want none", l, s, n)
	}
	b.login("/private")
	if n := store.len(); n != 1 {
		t.Errorf("after a login the store holds %d sessions, want 1", n)
	}
}

// A session that expired while a login was pending is simply no session: a
// navigation goes to PiPA (never a 5xx) and the pending login completes.
func TestExpiredSessionWithPendingLogin(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		for _, idle := range []time.Duration{0, 30 * time.Minute} {
			t.Run(fmt.Sprintf("%s/idle=%s", mode.name, idle), func(t *testing.T) {
				t.Parallel()
				var store *memStore
				if mode.store != nil {
					store = mode.store()
				}
				s := setupFor(store)
				edit := s.configure
				s.configure = func(cfg *pipaauth.Config) {
					if edit != nil {
						edit(cfg)
					}
					cfg.IdleTimeout = idle
					if idle == 0 {
						// Short, so that PiPA's ID tokens (stamped with the
						// real time) are still valid when the test's clock
						// passes it.
						cfg.SessionLifetime = 20 * time.Minute
					}
				}
				h := newHarness(t, s)
				b := h.app.newBrowser(t)
				b.login("/private")
				lifetime := 20 * time.Minute
				if idle > 0 {
					lifetime = idle
				}
				h.clock.Advance(lifetime - 5*time.Minute)
				pending := b.startLogin("/login?return_to=" + url.QueryEscape("/private?pending=1"))
				h.clock.Advance(6 * time.Minute) // the session expired, the attempt did not
				for _, target := range []string{"/private", "/login"} {
					if r := b.get(target); r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
						t.Errorf("GET %s: %d to %q, want 302 to PiPA; errors %v", target, r.status, r.location(), h.app.takeErrors())
					}
				}
				b.mustBeLoggedOut()
				if r := b.finish(pending); r.status != http.StatusSeeOther || r.location() != "/private?pending=1" {
					t.Fatalf("the pending login: %d to %q, want 303 to /private?pending=1; errors %v", r.status, r.location(), h.app.takeErrors())
				}
				b.mustUser()
			})
		}
	}
}

// A request sent with the cookie from before a login and answered after it
// (a stale fetch) gets the logged-out answer without a Set-Cookie that
// would delete the new session; so does a navigation.
func TestStalePreLoginRequestKeepsNewSession(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var store *memStore
			if mode.store != nil {
				store = mode.store()
			}
			h := newHarness(t, setupFor(store))
			b := h.app.newBrowser(t)
			b.login("/private")
			stale := h.app.cookieName + "=" + b.cookie()
			auth := b.startLogin("/login?return_to=%2Fprivate")
			h.clock.Advance(time.Second)
			if r := b.finish(auth); r.status != http.StatusSeeOther {
				t.Fatalf("second login: %d", r.status)
			}
			if store == nil {
				// A cookie session cannot be revoked: make the stale cookie
				// unusable as an expired one would be.
				stale = stale[:len(stale)-4] + "AAAA"
			}
			for _, hdr := range [][]string{{"Accept", "application/json"}, {"Sec-Fetch-Mode", "cors"}, {}} {
				other := h.app.newBrowser(t)
				r := other.get("/private", append([]string{"Cookie", stale}, hdr...)...)
				if c := r.setCookie(h.app.cookieName); c != nil {
					t.Errorf("request %v with the stale cookie: %d sets the session cookie %v; want it left alone", hdr, r.status, c)
				}
				if want := http.StatusUnauthorized; len(hdr) == 0 {
					if r.status != http.StatusFound {
						t.Errorf("navigation with the stale cookie: %d, want 302", r.status)
					}
				} else if r.status != want {
					t.Errorf("request %v with the stale cookie: %d, want %d", hdr, r.status, want)
				}
			}
			b.mustUser()
		})
	}
}

// A session cookie the store's codec cannot read (tampered, sealed with
// another store's keys, too long) is no session, never an outage.
func TestStoreUnreadableCookie(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	h := newHarness(t, setupFor(store))
	b := h.app.newBrowser(t)
	b.login("/private")
	good := b.cookie()
	foreign, err := securecookie.EncodeMulti(h.app.cookieName, "id-1", securecookie.CodecsFromPairs(securecookie.GenerateRandomKey(32))...)
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{
		"tampered":  good[:len(good)/2] + "A" + good[len(good)/2+1:],
		"truncated": good[:len(good)-5],
		"foreign":   foreign,
		"too long":  good + strings.Repeat("A", 5000),
		"garbage":   "x",
	} {
		cookie := h.app.cookieName + "=" + value
		nav := h.app.newBrowser(t).get("/private", "Cookie", cookie)
		if nav.status != http.StatusFound || !strings.HasPrefix(nav.location(), h.provider.URL+"/authorize?") {
			t.Errorf("%s: navigation %d to %q, want 302 to PiPA", name, nav.status, nav.location())
		}
		api := h.app.newBrowser(t).get("/private", "Cookie", cookie, "Accept", "application/json")
		if api.status != http.StatusUnauthorized || len(api.header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s: API call %d, Set-Cookie %q; want 401 and no cookie", name, api.status, api.header.Values("Set-Cookie"))
		}
	}
	h.app.takeErrors()
	b.mustUser()
}

// Two identical callbacks in flight (a reload during a slow callback): one
// code exchange only; the second gets "already used", and a third after the
// first finished the redirect home with the session untouched.
func TestDuplicateCallbackInFlight(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var store *memStore
			if mode.store != nil {
				store = mode.store()
			}
			h := newHarness(t, setupFor(store))
			h.setBehavior(pipatest.Behavior{TokenDelay: 500 * time.Millisecond})
			b := h.app.newBrowser(t)
			cb := b.authorize(b.startLogin("/private"))
			before := h.provider.TokenRequests()
			first := make(chan *response, 1)
			go func() { first <- b.get(cb) }()
			deadline := time.Now().Add(10 * time.Second)
			for h.provider.TokenRequests() == before && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			// The first callback is at the token endpoint: the browser still
			// holds the attempt cookie and sends it again.
			second := b.get(cb)
			expectFailure(t, h, second, http.StatusBadRequest, pipaauth.ErrInvalidState, -1)
			if r := <-first; r.status != http.StatusSeeOther || r.location() != "/private" {
				t.Fatalf("first callback: %d to %q, want 303 to /private; errors %v", r.status, r.location(), h.app.takeErrors())
			}
			if n := h.provider.TokenRequests() - before; n != 1 {
				t.Errorf("%d token requests for two identical callbacks, want 1", n)
			}
			session := b.cookie()
			third := b.get(cb)
			if third.status != http.StatusSeeOther || third.location() != "/" || third.setCookie(h.app.cookieName) != nil {
				t.Errorf("a callback replayed after the login: %d to %q, session Set-Cookie %v; want 303 to / and the session untouched", third.status, third.location(), third.setCookie(h.app.cookieName))
			}
			if n := h.provider.TokenRequests() - before; n != 1 {
				t.Errorf("%d token requests after a replay, want 1", n)
			}
			if b.cookie() != session {
				t.Error("the replay changed the session cookie")
			}
			b.mustUser()
		})
	}
}
