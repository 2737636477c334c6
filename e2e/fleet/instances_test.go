package fleet_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/session"
)

// A login that starts on one instance finishes on the other, and the session
// then opens protected pages on both.
func TestLoginAcrossInstances(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: onRedis(addr, prefix)})
	b := f.newBrowser()
	b.login(t, "/private")

	f.wantLoginCrossed(t)

	c := b.sessionCookie(t)
	seen := map[string]bool{}
	for _, base := range f.bases() {
		r := f.wantLoggedIn(t, base, c)
		seen[strings.Fields(r.body)[0]] = true
	}
	if !seen["instance=a"] || !seen["instance=b"] {
		t.Errorf("served by %v, want both instances", seen)
	}
	if ks := keys(t, addr, prefix); len(ks) != 1 {
		t.Errorf("Redis holds %d sessions for one logged-in browser, want 1: %v", len(ks), ks)
	}
}

// Logging out through one instance deletes the session in Redis: a copy of
// the cookie taken before is refused by every instance.
func TestLogoutRevokesCopiesOnEveryInstance(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: onRedis(addr, prefix)})
	b := f.newBrowser()
	b.login(t, "/private")
	saved := b.sessionCookie(t)
	f.wantLoggedIn(t, f.url, saved)

	b.logout(t)
	if ks := keys(t, addr, prefix); len(ks) != 0 {
		t.Errorf("after logout Redis still holds %v", ks)
	}
	for _, base := range f.bases() {
		f.wantRefused(t, base, saved)
	}
}

// The limit of stateless cookie sessions (no SessionStore), even with shared
// SessionKeys across instances: logout only clears the browser's cookie, so a
// copy saved before the logout still opens protected pages on every instance
// until the session lifetime ends. Use a SessionStore for revocation.
func TestCookieSessionsLimit_LogoutCannotRevokeSavedCopy(t *testing.T) {
	t.Parallel()
	f := newFleet(t, setup{})
	b := f.newBrowser()
	chain := b.login(t, "/private")
	if len(chain) < 3 {
		t.Fatalf("login chain %d responses", len(chain))
	}
	saved := b.sessionCookie(t)
	for _, base := range f.bases() {
		f.wantLoggedIn(t, base, saved)
	}
	b.logout(t)
	// The browser itself is logged out ...
	r, err := b.do(http.MethodGet, f.url+"/private", http.Header{"Accept": {"application/json"}})
	if err != nil || r.status != http.StatusUnauthorized {
		t.Errorf("the browser after logout: %d, %v; want 401", r.status, err)
	}
	// ... but the saved copy still works everywhere: documented, not a bug.
	for _, base := range f.bases() {
		f.wantLoggedIn(t, base, saved)
	}
}

// Several tabs of one browser start logins at the same moment (a restored
// browser session, say), with the Redis store behind two instances: each
// login has its own attempt cookie, so every tab completes on its page,
// repeatedly.
func TestParallelTabsLogInWithRedis(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: onRedis(addr, prefix)})
	for round := range 5 {
		b := f.newBrowser()
		var wg sync.WaitGroup
		for i := range pipaauth.MaxPendingLogins {
			wg.Go(func() {
				path := fmt.Sprintf("/private?tab=%d", i)
				chain, err := b.follow(f.url + path)
				if err != nil {
					t.Errorf("round %d, tab %d: %v", round, i, err)
					return
				}
				if last := chain[len(chain)-1]; last.status != http.StatusOK || last.url != f.url+path {
					t.Errorf("round %d, tab %d ends on %s with %d %q, want 200 at %s", round, i, last.url, last.status, last.body, path)
				}
			})
		}
		wg.Wait()
		f.wantLoggedIn(t, f.url, b.sessionCookie(t))
	}
}

// Two tabs have logins pending (started one after the other); their
// callbacks are in flight together, both carrying the cookies from before
// either finished. Both log in, in both modes and whichever instance serves
// them: each attempt has its own cookie, sealed with the shared keys.
func TestOverlappingCallbacks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"cookie sessions", false}, {"Redis", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := setup{}
			if tc.redis {
				addr, prefix := sharedRedis(t)
				s.store = onRedis(addr, prefix)
			}
			f := newFleet(t, s)
			b := f.newBrowser()
			var callbacks []string
			for i := range 2 {
				r, err := b.do(http.MethodGet, fmt.Sprintf("%s/private?tab=%d", f.url, i), nil)
				if err != nil || r.status != http.StatusFound {
					t.Fatalf("tab %d: %d, %v; want 302 to PiPA", i, r.status, err)
				}
				p, err := b.do(http.MethodGet, r.location(), nil)
				if err != nil || p.status != http.StatusFound {
					t.Fatalf("tab %d at PiPA: %d, %v; want 302 back", i, p.status, err)
				}
				callbacks = append(callbacks, p.location())
			}
			u, _ := url.Parse(f.url)
			// Both attempt cookies, no session yet. The jar also holds the
			// embedded PiPA's own session cookie (same host, other port):
			// leave it out.
			var cookies []*http.Cookie
			for _, c := range b.jar.Cookies(u) {
				if c.Name != pipatest.SessionCookie {
					cookies = append(cookies, c)
				}
			}
			if len(cookies) != 2 {
				t.Fatalf("the browser holds %d cookies after two starts, want the two attempt cookies", len(cookies))
			}
			for i, cb := range callbacks {
				r, err := f.getWithCookies(cb, cookies, false)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("/private?tab=%d", i)
				if r.status != http.StatusSeeOther || r.location() != want {
					t.Errorf("callback of tab %d: %d to %q, want 303 to %s (logs:\n%s)", i, r.status, r.location(), want, f.logs)
				}
			}
		})
	}
}

// getWithCookie GETs rawURL carrying cookie c alone, following redirects
// only when follow is set.
func (f *fleet) getWithCookie(rawURL string, c *http.Cookie, follow bool) (response, error) {
	return f.getWithCookies(rawURL, []*http.Cookie{c}, follow)
}

// getWithCookies GETs rawURL carrying cookies cs alone, following redirects
// only when follow is set.
func (f *fleet) getWithCookies(rawURL string, cs []*http.Cookie, follow bool) (response, error) {
	client := &http.Client{Transport: f.client, Timeout: 10 * time.Second}
	if !follow {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return response{}, err
	}
	for _, c := range cs {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{url: rawURL, status: resp.StatusCode, header: resp.Header, body: string(body)}, err
}

// With Redis behind TLS, the cookie carrying the session id has this
// package's attributes whatever the store's own Options say.
func TestSessionCookieFlagsWithRedis(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{tls: true, store: func(t testing.TB, i int, keys [][]byte) sessions.Store {
		st := newStore(t, addr, prefix, keys)
		// Options a careless setup might leave: all of them must be ignored.
		st.Options = &sessions.Options{Path: "/app", Domain: "example.com", MaxAge: 86400 * 30, Secure: false, HttpOnly: false, SameSite: http.SameSiteNoneMode, Partitioned: true}
		return st
	}})
	b := f.newBrowser()
	chain := b.login(t, "/private")
	n := 0
	for _, r := range chain {
		if !strings.HasPrefix(r.url, f.url) {
			continue // PiPA
		}
		for _, sc := range r.header.Values("Set-Cookie") {
			n++
			c, err := http.ParseSetCookie(sc)
			if err != nil {
				t.Errorf("Set-Cookie %q: %v", sc, err)
				continue
			}
			attempt := strings.HasPrefix(c.Name, f.cookie+"-login-")
			if (c.Name != f.cookie && !attempt) || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.Partitioned {
				t.Errorf("Set-Cookie %q: want the session cookie or a login attempt's, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, not Partitioned", sc)
			}
			switch {
			case attempt && c.Value == "":
				if c.MaxAge >= 0 {
					t.Errorf("Set-Cookie %q: an attempt cookie deleted with Max-Age %d", sc, c.MaxAge)
				}
			case attempt:
				if c.MaxAge <= 0 || c.MaxAge > int(pipaauth.LoginAttemptTTL/time.Second) {
					t.Errorf("Set-Cookie %q: Max-Age %d, want within the attempt's time to live", sc, c.MaxAge)
				}
			case c.MaxAge <= 0 || c.MaxAge > int((pipaauth.DefaultSessionLifetime+session.ExpiredGrace)/time.Second):
				t.Errorf("Set-Cookie %q: Max-Age %d, want within the session lifetime and its grace for a logout after expiry", sc, c.MaxAge)
			}
		}
	}
	if n < 2 {
		t.Errorf("saw %d Set-Cookie headers from the app during a login, want the attempt's and the session's", n)
	}
}

// A login replaces the session id: the cookie changes, the id the browser
// had before is gone from Redis, and exactly one session per logged-in
// browser remains, with a TTL within the session lifetime.
func TestLoginRenewsSessionID(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: onRedis(addr, prefix)})
	b := f.newBrowser()

	// A first login, then a second one started: starting writes nothing
	// to Redis and leaves the session cookie as it is.
	b.login(t, "/private")
	before := b.sessionCookie(t)
	oldID := f.sessionID(t, before.Value)
	if !exists(t, addr, prefix+oldID) {
		t.Fatalf("the first login's session %s is not in Redis: %v", oldID, keys(t, addr, prefix))
	}
	r, err := b.do(http.MethodGet, f.url+"/login?return_to=%2Fprivate", nil)
	if err != nil || r.status != http.StatusFound {
		t.Fatalf("GET /login: %d, %v; want 302", r.status, err)
	}
	if ks := keys(t, addr, prefix); len(ks) != 1 || b.sessionCookie(t).Value != before.Value {
		t.Fatalf("starting a login changed Redis (%v) or the session cookie", ks)
	}

	// Finish it: PiPA, then the callback (on the other instance).
	chain, err := b.follow(r.location())
	if err != nil || chain[len(chain)-1].status != http.StatusOK {
		t.Fatalf("finishing the login: %v, %+v", err, chain)
	}
	after := b.sessionCookie(t)
	newID := f.sessionID(t, after.Value)
	if after.Value == before.Value || newID == oldID {
		t.Fatalf("the session cookie/id did not change at login: %s", newID)
	}
	if exists(t, addr, prefix+oldID) {
		t.Errorf("the session id from before the login (%s) survives it in Redis", oldID)
	}
	if ks := keys(t, addr, prefix); len(ks) != 1 || ks[0] != prefix+newID {
		t.Errorf("Redis holds %v, want exactly the new session %s", ks, prefix+newID)
	}
	ttl, err := redis.Int(conn(t, addr).Do("TTL", prefix+newID))
	if max := int((pipaauth.DefaultSessionLifetime + session.ExpiredGrace) / time.Second); err != nil || ttl <= 0 || ttl > max {
		t.Errorf("TTL of the session = %d, %v; want in (0, %d]", ttl, err, max)
	} else if ttl < max-60 {
		t.Errorf("TTL of a new session = %ds, want about the session lifetime and its grace for a logout after expiry (%ds)", ttl, max)
	}
	// The old cookie, replayed, is no session.
	f.wantRefused(t, f.url, before)
}

// A cookie whose sealed id was tampered with is no session: 302/401, never
// 503, on every instance.
func TestTamperedSessionIDWithRedis(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: onRedis(addr, prefix)})
	b := f.newBrowser()
	b.login(t, "/private")
	c := b.sessionCookie(t)
	v := []byte(c.Value)
	v[len(v)/2] ^= 1
	if v[len(v)/2] == '=' || v[len(v)/2] == 0 {
		v[len(v)/2] = 'A'
	}
	for _, tampered := range []string{string(v), "x", c.Value[:len(c.Value)/2]} {
		for _, base := range f.bases() {
			f.wantRefused(t, base, &http.Cookie{Name: c.Name, Value: tampered})
		}
	}
	f.wantLoggedIn(t, f.url, c)
}
