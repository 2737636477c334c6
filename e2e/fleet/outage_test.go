package fleet_test

import (
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boj/redistore"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
)

// wantUnavailable checks that c at base gets 503 (for a navigation and a
// JSON request alike) within limit, and never a redirect to PiPA.
func (f *fleet) wantUnavailable(t testing.TB, base string, c *http.Cookie, limit time.Duration) {
	t.Helper()
	for _, k := range []kind{navigation, api} {
		start := time.Now()
		r, err := f.getTimeout(base, c, k, limit+5*time.Second)
		took := time.Since(start)
		if err != nil {
			t.Errorf("%s to %s/private with the store down: %v after %s", k, base, err, took.Round(time.Millisecond))
			continue
		}
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("%s to %s/private with the store down: %d (Location %q), want 503", k, base, r.status, r.location())
		}
		if strings.HasPrefix(r.location(), f.provider.URL) {
			t.Errorf("%s with the store down was sent to PiPA (%s): a store failure must not look like a logout", k, r.location())
		}
		if took > limit {
			t.Errorf("%s with the store down answered after %s, want within %s", k, took.Round(time.Millisecond), limit)
		}
	}
}

// waitLoggedIn retries until c opens /private at base again, for at most d.
func (f *fleet) waitLoggedIn(t testing.TB, base string, c *http.Cookie, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r, err := f.get(base, c, navigation)
		if err == nil && r.status == http.StatusOK && strings.Contains(r.body, "user=alice@example.com") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/private with the session from before the outage: %d %q, %v after %s; want 200 for alice (logs:\n%s)", base, r.status, r.body, err, d, f.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Redis goes away (here: saves its data and exits), and protected requests
// with a valid session get 503, quickly, with a log line, never a redirect
// to PiPA. Redis comes back on the same port with its data, and the same
// cookie works again.
func TestRedisDownThenBack(t *testing.T) {
	t.Parallel()
	rs := privateRedis(t, t.TempDir())
	prefix := newPrefix()
	f := newFleet(t, setup{store: onRedis(rs.Addr, prefix)})
	b := f.newBrowser()
	b.login(t, "/private")
	c := b.sessionCookie(t)

	if err := rs.ShutdownSave(); err != nil {
		t.Fatal(err)
	}
	for _, base := range f.bases() {
		f.wantUnavailable(t, base, c, 3*time.Second)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "session store") {
		t.Errorf("no error line names the store failure; logs:\n%s", logs)
	}

	back, err := redisproc.Start(redisproc.Options{Port: rs.Port, Dir: rs.Dir})
	if err != nil {
		t.Fatalf("restarting redis-server on port %d: %v", rs.Port, err)
	}
	t.Cleanup(back.Stop)
	for _, base := range f.bases() {
		f.waitLoggedIn(t, base, c, 5*time.Second)
	}
}

// The frozen-Redis tests measure goroutines, so they do not run in parallel
// with other tests.

// A frozen Redis (SIGSTOP: connections are accepted, nothing answers) costs
// at most SessionStoreMaxWaiting goroutines, even with redistore's README
// setup, whose connections have no timeouts at all: 50 concurrent requests
// all get 503 quickly, and the session works again once Redis thaws.
func TestRedisFrozen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t testing.TB, addr, prefix string, keys [][]byte) sessions.Store
	}{
		{"README store without timeouts", func(t testing.TB, addr, prefix string, keys [][]byte) sessions.Store {
			st, err := redistore.NewRediStore(10, "tcp", addr, "", "", keys...)
			if err != nil {
				t.Fatalf("redistore: %v", err)
			}
			st.SetKeyPrefix(prefix)
			t.Cleanup(func() { st.Close() })
			return st
		}},
		{"recommended pool with timeouts", func(t testing.TB, addr, prefix string, keys [][]byte) sessions.Store {
			return newStore(t, addr, prefix, keys)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const (
				requests   = 50
				maxWaiting = 4
				timeout    = 500 * time.Millisecond
			)
			rs := privateRedis(t, "")
			prefix := newPrefix()
			f := newFleet(t, setup{
				timeout:    timeout,
				maxWaiting: maxWaiting,
				store: func(t testing.TB, _ int, keys [][]byte) sessions.Store {
					return tc.store(t, rs.Addr, prefix, keys)
				},
			})
			b := f.newBrowser()
			b.login(t, "/private")
			c := b.sessionCookie(t)
			app := f.apps[0].srv.URL
			f.wantLoggedIn(t, app, c)

			// Fire straight at one instance, on a transport of the test's own
			// whose connections are closed afterwards, so that what is left
			// is what the store holds.
			tr := f.client.Clone()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			settle()
			before := runtime.NumGoroutine()

			if err := rs.Freeze(); err != nil {
				t.Fatal(err)
			}
			thawed := false
			thaw := func() {
				if !thawed {
					thawed = true
					rs.Thaw()
				}
			}
			defer thaw()

			var wg sync.WaitGroup
			var mu sync.Mutex
			statuses := map[int]int{}
			var slowest time.Duration
			var errs []error
			start := make(chan struct{})
			for range requests {
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodGet, app+"/private", nil)
					req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
					<-start
					t0 := time.Now()
					resp, err := client.Do(req)
					took := time.Since(t0)
					mu.Lock()
					defer mu.Unlock()
					slowest = max(slowest, took)
					if err != nil {
						errs = append(errs, err)
						return
					}
					resp.Body.Close()
					statuses[resp.StatusCode]++
				})
			}
			close(start)
			wg.Wait()
			if len(errs) > 0 {
				t.Errorf("%d of %d requests on a frozen Redis failed (hung?): %v", len(errs), requests, errors.Join(errs...))
			}
			if statuses[http.StatusServiceUnavailable] != requests {
				t.Errorf("statuses on a frozen Redis: %v, want %d × 503", statuses, requests)
			}
			if slowest > timeout+2*time.Second {
				t.Errorf("slowest answer on a frozen Redis after %s, want within about SessionStoreTimeout (%s)", slowest.Round(time.Millisecond), timeout)
			}
			tr.CloseIdleConnections()
			settle()
			// Left: at most maxWaiting store calls stuck in Redis reads, plus
			// a little slack for the runtime and net/http's background work.
			const slack = 6
			if grown := runtime.NumGoroutine() - before; grown > maxWaiting+slack {
				t.Errorf("goroutines grew by %d on a frozen Redis, want at most %d (SessionStoreMaxWaiting) + %d", grown, maxWaiting, slack)
				buf := make([]byte, 1<<20)
				t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			} else {
				t.Logf("%d requests on a frozen Redis: %v, slowest %s, goroutines %+d (bound %d+%d)", requests, statuses, slowest.Round(time.Millisecond), grown, maxWaiting, slack)
			}

			thaw()
			f.waitLoggedIn(t, app, c, 5*time.Second)
			f.waitLoggedIn(t, f.url, c, 5*time.Second)
			f.wantLoggedIn(t, f.url, c)
		})
	}
}

// settle lets goroutines that are on their way out finish.
func settle() {
	for range 5 {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
	}
}

// While Redis is down, a visitor without a session, or with a cookie the
// store's codec cannot read, asking for a protected page is sent to log in
// (starting a login needs no store: the attempt lives in its own cookie),
// and an API request gets 401 (there is no session to look up). Logout
// answers 503 and leaves the session alone.
func TestRedisDownNewVisitor(t *testing.T) {
	t.Parallel()
	rs := privateRedis(t, "")
	f := newFleet(t, setup{store: onRedis(rs.Addr, newPrefix())})
	b := f.newBrowser()
	b.login(t, "/private")
	c := b.sessionCookie(t)
	rs.Stop()
	for _, cookie := range []*http.Cookie{nil, {Name: c.Name, Value: "tampered"}} {
		r, err := f.get(f.url, cookie, navigation)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusFound {
			t.Errorf("navigation with cookie %v while Redis is down: %d (Location %q), want 302 to PiPA", cookie, r.status, r.location())
		}
		r, err = f.get(f.url, cookie, api)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusUnauthorized {
			t.Errorf("JSON request with cookie %v while Redis is down: %d, want 401 (no session, nothing to look up)", cookie, r.status)
		}
	}
	for _, path := range []string{"/login", "/login?return_to=/private"} {
		r, err := b.do(http.MethodGet, f.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusFound {
			t.Errorf("GET %s while Redis is down: %d, want 302 to PiPA", path, r.status)
		}
	}
	r, err := b.do(http.MethodPost, f.url+"/logout", http.Header{"Sec-Fetch-Site": {"same-origin"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusServiceUnavailable || len(r.header.Values("Set-Cookie")) != 0 {
		t.Errorf("logout while Redis is down: %d, Set-Cookie %q; want 503 and the cookie kept (the server-side session could not be deleted)", r.status, r.header.Values("Set-Cookie"))
	}
}

// slowStore delays every Load of a real store.
type slowStore struct {
	sessions.Store
	delay time.Duration
}

func (s slowStore) New(r *http.Request, name string) (*sessions.Session, error) {
	time.Sleep(s.delay)
	return s.Store.New(r, name)
}

// A client that goes away while its session is being loaded (a closed tab,
// a load generator stopping) is not a store failure: it must not log an
// ERROR line saying the session store failed, which would page someone.
func TestClientGoneDuringStoreCallIsNoStoreFailure(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: func(t testing.TB, _ int, keys [][]byte) sessions.Store {
		return slowStore{newStore(t, addr, prefix, keys), 300 * time.Millisecond}
	}})
	b := f.newBrowser()
	b.login(t, "/private")
	c := b.sessionCookie(t)
	if _, err := f.getTimeout(f.apps[0].srv.URL, c, api, 50*time.Millisecond); err == nil {
		t.Fatal("the request finished before the client gave up")
	}
	time.Sleep(500 * time.Millisecond) // the store call ends, the guard answers into the void
	for line := range strings.Lines(f.logs.String()) {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("a client gone during a store call was logged as an error: %s", strings.TrimSpace(line))
		}
	}
	f.wantLoggedIn(t, f.url, c)
}
