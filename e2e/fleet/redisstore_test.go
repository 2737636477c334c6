package fleet_test

// The fleet on redisstore (issue 10): two instances, each with its own
// rueidis client and redisstore.Store, behind the round-robin proxy.

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/redisstore"
	"github.com/pipaauth/pipaauth/session"
)

// onRedisstore returns a setup.store that gives each instance its own
// rueidis client of addr (as separate processes would have) and a
// redisstore.Store under prefix, as docs/redis.md recommends.
func onRedisstore(addr, prefix string) func(testing.TB, int, [][]byte) sessions.Store {
	return func(t testing.TB, _ int, _ [][]byte) sessions.Store { return newRedisstore(t, addr, prefix) }
}

func newRedisstore(t testing.TB, addr, prefix string) *redisstore.Store {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ConnWriteTimeout: time.Second, RetryDelay: redisstore.QuickRetry})
	if err != nil {
		t.Fatalf("rueidis: %v", err)
	}
	t.Cleanup(c.Close)
	s, err := redisstore.New(c, redisstore.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("redisstore: %v", err)
	}
	return s
}

// commandCalls returns how many commands Redis at addr has run, from INFO
// commandstats, leaving out INFO itself.
func commandCalls(t testing.TB, addr string) int64 {
	t.Helper()
	info, err := redis.String(conn(t, addr).Do("INFO", "commandstats"))
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	var n int64
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || name == "info" {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("INFO commandstats line %q: %v", line, err)
		}
		n += c
	}
	return n
}

// logoutAt logs c out at base (one instance, not the proxy) as a
// same-origin form would.
func (f *fleet) logoutAt(t testing.TB, base string, c *http.Cookie) {
	t.Helper()
	lo := f.newBrowser()
	u, _ := url.Parse(base)
	lo.jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value}})
	r, err := lo.do(http.MethodPost, base+"/logout", http.Header{"Sec-Fetch-Site": {"same-origin"}})
	if err != nil || r.status != http.StatusSeeOther {
		t.Fatalf("logout at %s: %d %q, %v; want 303", base, r.status, r.body, err)
	}
}

// waitRefused polls base/private (JSON) with c until it answers 401, and
// returns how long that took; it fails t after limit, or at any answer other
// than 200 or 401.
func (f *fleet) waitRefused(t testing.TB, base string, c *http.Cookie, limit time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		r, err := f.get(base, c, api)
		if err != nil {
			t.Fatalf("GET %s/private: %v", base, err)
		}
		switch r.status {
		case http.StatusUnauthorized:
			return time.Since(begin)
		case http.StatusOK:
		default:
			t.Fatalf("GET %s/private while waiting for the revocation: %d %q", base, r.status, r.body)
		}
		if time.Since(begin) > limit {
			t.Fatalf("%s still serves the session %s after it ended elsewhere", base, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// A login that starts on one instance finishes on the other; the session
// opens protected pages on both, from one record in Redis whose key and
// sid and sub indexes expire with the login.
func TestRedisstoreLoginAcrossInstances(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: onRedisstore(addr, prefix)})
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
	ks := keys(t, addr, prefix)
	// Sorted by kind: the user's keys are prefix{user tag}:s:... and
	// prefix{user tag}:sub:<sub>, the sid index prefix{sid tag}:sid:<sid>.
	kind := func(k string) string {
		_, rest, _ := strings.Cut(k, "}:")
		before, _, _ := strings.Cut(rest, ":")
		return before
	}
	sort.Slice(ks, func(i, j int) bool { return kind(ks[i]) < kind(ks[j]) }) // s, sid, sub
	if len(ks) != 3 || kind(ks[0]) != "s" || kind(ks[1]) != "sid" || kind(ks[2]) != "sub" ||
		!strings.HasSuffix(ks[2], ":sub:"+f.provider.Subject(pipatest.DefaultClientID, "alice")) {
		t.Fatalf("Redis holds %q for one login, want its session, its sid index (pipatest's ID tokens carry the provider session's sid) and its sub index", ks)
	}
	for _, k := range ks {
		ttl, err := redis.Int64(conn(t, addr).Do("PTTL", k))
		if err != nil || ttl <= 0 || ttl > int64((12*time.Hour+session.ExpiredGrace)/time.Millisecond) {
			t.Errorf("PTTL %s = %d, %v; want a TTL of at most the 12h lifetime and its 1h grace for a logout after expiry", k, ttl, err)
		}
	}
}

// A logout on one instance is refused by the other within 100 ms, while that
// other instance had the session in its client-side cache (its guarded
// requests just before cost Redis no command).
func TestRedisstoreLogoutSeenWithin100ms(t *testing.T) {
	rs := privateRedis(t, "")
	f := newFleet(t, setup{store: onRedisstore(rs.Addr, newPrefix())})
	a, b := f.apps[0].srv.URL, f.apps[1].srv.URL
	const rounds, cached = 5, 20
	var took []time.Duration
	for range rounds {
		br := f.newBrowser()
		br.login(t, "/private")
		c := br.sessionCookie(t)
		// The instance that wrote the session (the callback's) reads it
		// from Redis for 100 ms after its write: start past that.
		time.Sleep(150 * time.Millisecond)
		f.wantLoggedIn(t, b, c) // b reads it from Redis, and caches it
		before := commandCalls(t, rs.Addr)
		for range cached {
			f.wantLoggedIn(t, b, c)
		}
		if n := commandCalls(t, rs.Addr) - before; n != 0 {
			t.Fatalf("%d guarded requests on b cost Redis %d commands, want 0 (client-side cache)", cached, n)
		}
		f.logoutAt(t, a, c)
		took = append(took, f.waitRefused(t, b, c, 100*time.Millisecond))
		f.wantRefused(t, f.url, c)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("logout on a, refused by b (which had the session cached) after: %v (%d rounds; 0 Redis commands per cached guarded request)", took, rounds)
}

// A token refresh racing a logout on the other instance never brings the
// session back, whatever the order in which they land: the write-back is a
// compare-and-set.
func TestRedisstoreRefreshRacingLogout(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	clk := newClock()
	f := newFleet(t, setup{store: onRedisstore(addr, prefix), keepTokens: true, now: clk.now})
	f.provider.SetClock(clk.now) // one clock: a refreshed ID token's exp is checked
	statuses := map[int]int{}
	for i, delay := range []time.Duration{0, 2, 5, 10, 20, 40, 0, 5, 20, 60} {
		delay *= time.Millisecond
		f.provider.SetAccessTokenLifetime(time.Hour)
		br := f.newBrowser()
		br.login(t, "/private")
		c := br.sessionCookie(t)
		clk.advance(2 * time.Hour) // the access token has expired: /token refreshes
		f.provider.SetBehavior(pipatest.Behavior{TokenDelay: delay})
		done := make(chan response, 1)
		go func() {
			r, err := f.token(f.apps[1].srv.URL, c)
			if err != nil {
				t.Errorf("/token on b: %v", err)
			}
			done <- r
		}()
		time.Sleep(time.Duration(i%3) * delay / 2) // the logout lands before, during or after the refresh
		f.logoutAt(t, f.apps[0].srv.URL, c)
		rb := <-done
		f.provider.SetBehavior(pipatest.Behavior{})
		clk.advance(-2 * time.Hour) // back, for the next round's ID token
		statuses[rb.status]++
		for _, base := range f.bases() {
			f.waitRefused(t, base, c, 100*time.Millisecond)
		}
		// And it stays gone once the caches have expired too.
		time.Sleep(1100 * time.Millisecond)
		for _, base := range f.bases() {
			if r, err := f.get(base, c, api); err != nil || r.status != http.StatusUnauthorized {
				t.Errorf("round %d (token delay %s): %s/private after logout and refresh: %d %q, %v; want 401", i, delay, base, r.status, r.body, err)
			}
		}
	}
	if n := len(keys(t, addr, prefix+"s:")); n != 0 {
		t.Errorf("Redis holds %d sessions after every login was logged out, want 0", n)
	}
	t.Logf("the refreshes racing the logouts answered %v", statuses)
}

// loginWithSID logs a new browser in with an ID token whose sid is sid, and
// returns its session cookie.
func (f *fleet) loginWithSID(t testing.TB, sid string) *http.Cookie {
	t.Helper()
	f.provider.SetBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["sid"] = sid }})
	defer f.provider.SetBehavior(pipatest.Behavior{})
	b := f.newBrowser()
	b.login(t, "/private")
	return b.sessionCookie(t)
}

// backChannel posts a logout token to base's /backchannel-logout as the
// provider does.
func (f *fleet) backChannel(t testing.TB, base, token string) response {
	t.Helper()
	client := &http.Client{Transport: f.client, Timeout: 10 * time.Second}
	resp, err := client.PostForm(base+"/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatalf("POST %s/backchannel-logout: %v", base, err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	fmt.Fprint(&body, resp.Header.Get("Content-Type"))
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return response{url: base, status: resp.StatusCode, header: resp.Header, body: string(buf[:n])}
}

// Back-channel logout on a fleet: two browsers of alice, each from its own
// provider session (sid). Each kind of invalid logout token is refused with
// 400 and ends nothing; a token naming the first sid ends that browser's
// session on both instances (which had it cached) and not the other's; a
// token naming alice's sub ends the other; a replayed token is refused.
func TestRedisstoreBackChannelLogout(t *testing.T) {
	t.Parallel()
	addr, prefix := sharedRedis(t)
	f := newFleet(t, setup{store: onRedisstore(addr, prefix)})
	one, two := f.loginWithSID(t, "pipa-session-1"), f.loginWithSID(t, "pipa-session-2")
	both := func() {
		t.Helper()
		for _, c := range []*http.Cookie{one, two} {
			for _, base := range f.bases() {
				f.wantLoggedIn(t, base, c)
			}
		}
	}
	both()
	cid := pipatest.DefaultClientID
	invalid := []struct {
		name string
		opts pipatest.LogoutTokenOptions
	}{
		{"signed with another key", pipatest.LogoutTokenOptions{SID: "pipa-session-1", WrongKey: true}},
		{"another issuer", pipatest.LogoutTokenOptions{SID: "pipa-session-1", Issuer: "https://evil.example"}},
		{"another audience", pipatest.LogoutTokenOptions{SID: "pipa-session-1", Audience: []string{"other-client"}}},
		{"iat an hour ago", pipatest.LogoutTokenOptions{SID: "pipa-session-1", IssuedAt: time.Now().Add(-time.Hour)}},
		{"iat in the future", pipatest.LogoutTokenOptions{SID: "pipa-session-1", IssuedAt: time.Now().Add(time.Hour)}},
		{"expired", pipatest.LogoutTokenOptions{SID: "pipa-session-1", Expiry: time.Now().Add(-time.Minute)}},
		{"no jti", pipatest.LogoutTokenOptions{SID: "pipa-session-1", OmitJTI: true}},
		{"no events", pipatest.LogoutTokenOptions{SID: "pipa-session-1", OmitEvents: true}},
		{"events without the logout member", pipatest.LogoutTokenOptions{SID: "pipa-session-1", Events: map[string]any{"http://example.com/other": map[string]any{}}}},
		{"a nonce", pipatest.LogoutTokenOptions{SID: "pipa-session-1", Nonce: "n"}},
		{"neither sub nor sid", pipatest.LogoutTokenOptions{OmitSubject: true}},
		{"typ at+jwt", pipatest.LogoutTokenOptions{SID: "pipa-session-1", Type: "at+jwt"}},
	}
	for _, tt := range invalid {
		r := f.backChannel(t, f.url, f.provider.LogoutToken(cid, tt.opts))
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `"error":"invalid_request"`) {
			t.Errorf("%s: %d %q, want 400 invalid_request", tt.name, r.status, r.body)
		}
	}
	both() // nothing ended

	bySID := f.provider.LogoutToken(cid, pipatest.LogoutTokenOptions{OmitSubject: true, SID: "pipa-session-1"})
	if r := f.backChannel(t, f.apps[0].srv.URL, bySID); r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("back-channel logout by sid: %d %q (Cache-Control %q), want 200 no-store", r.status, r.body, r.header.Get("Cache-Control"))
	}
	took := f.waitRefused(t, f.apps[1].srv.URL, one, 100*time.Millisecond)
	for _, base := range f.bases() {
		f.wantRefused(t, base, one)
		f.wantLoggedIn(t, base, two)
	}
	if r := f.backChannel(t, f.url, bySID); r.status != http.StatusBadRequest {
		t.Errorf("the same logout token again: %d %q, want 400 (jti replay)", r.status, r.body)
	}

	bySub := f.provider.LogoutToken(cid, pipatest.LogoutTokenOptions{User: "alice"})
	if r := f.backChannel(t, f.apps[1].srv.URL, bySub); r.status != http.StatusOK {
		t.Fatalf("back-channel logout by sub: %d %q, want 200", r.status, r.body)
	}
	tookSub := f.waitRefused(t, f.apps[0].srv.URL, two, 100*time.Millisecond)
	for _, base := range f.bases() {
		f.wantRefused(t, base, two)
	}
	for _, k := range keys(t, addr, prefix) {
		if !strings.HasPrefix(k, prefix+"seen:") {
			t.Errorf("Redis holds %s after every session ended, want only the seen jti markers", k)
		}
	}
	t.Logf("back-channel logout seen by the other instance after %s (by sid), %s (by sub)", took, tookSub)
}

// Redis killed (SIGKILL) under a logged-in fleet: every guarded request of
// the session holder gets 503 within the store timeout, never a 500, a
// hang, a stale 200 past the 1 s cache bound, or a redirect to PiPA. A
// redis-server started again on the port (empty: the data died with the
// process) is used without restarting the instances: a new login works.
func TestRedisstoreKilledAndRestarted(t *testing.T) {
	const timeout = 500 * time.Millisecond
	rs := privateRedis(t, "")
	f := newFleet(t, setup{store: onRedisstore(rs.Addr, newPrefix()), timeout: timeout})
	b := f.newBrowser()
	b.login(t, "/private")
	c := b.sessionCookie(t)
	for _, base := range f.bases() {
		f.wantLoggedIn(t, base, c) // cached on both instances
	}
	rs.Stop()
	killed := time.Now()
	var lastOK time.Duration
	for _, base := range f.bases() {
		for {
			r, err := f.getTimeout(base, c, api, timeout+5*time.Second)
			if err != nil {
				t.Fatalf("GET %s/private with Redis killed: %v", base, err)
			}
			if r.status == http.StatusServiceUnavailable {
				break
			}
			if r.status != http.StatusOK || time.Since(killed) > time.Second {
				t.Fatalf("GET %s/private %s after Redis was killed: %d %q, want 503 (or a cached 200 within 1 s)", base, time.Since(killed), r.status, r.body)
			}
			lastOK = time.Since(killed)
			time.Sleep(time.Millisecond)
		}
	}
	for _, base := range f.bases() {
		f.wantUnavailable(t, base, c, timeout+time.Second)
	}
	t.Logf("Redis killed: last cached 200 at %s after the kill (0 = none)", lastOK.Round(time.Millisecond))

	back, err := redisprocStart(rs.Port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Stop)
	// The session died with Redis's memory: the cookie is no session now,
	// and a fresh login works on the same instances and clients.
	// Each instance's first request on a connection that died with the
	// old server may fail once (503: the client does not retry, see
	// docs/redis.md); then it answers.
	deadline := time.Now().Add(5 * time.Second)
	for _, base := range f.bases() {
		for {
			r, err := f.get(base, c, api)
			if err == nil && r.status == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the restart: %d %q, %v; want 401 (the session died with Redis)", r.status, r.body, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A login's first write on a connection that died with the old server
	// may fail once (503): scripts are not retried, since a compare-and-set
	// may already have run (docs/redis.md). The user's next try works.
	var again *browser
	for try := 1; ; try++ {
		again = f.newBrowser()
		chain, err := again.follow(f.url + "/private")
		if err == nil && chain[len(chain)-1].status == http.StatusOK {
			break
		}
		if try == 3 {
			again.login(t, "/private") // reports what fails
		}
	}
	c2 := again.sessionCookie(t)
	for _, base := range f.bases() {
		f.wantLoggedIn(t, base, c2)
	}
}

// Redis frozen (SIGSTOP: connections accepted, nothing answered): a cached
// session is served at most the 1 s cache bound after it was read, then
// every guarded request gets 503 within the store timeout; once Redis thaws
// the same cookie works again, without restarting anything.
func TestRedisstoreFrozen(t *testing.T) {
	const timeout = 500 * time.Millisecond
	rs := privateRedis(t, "")
	f := newFleet(t, setup{store: onRedisstore(rs.Addr, newPrefix()), timeout: timeout})
	b := f.newBrowser()
	b.login(t, "/private")
	c := b.sessionCookie(t)
	for _, base := range f.bases() {
		f.wantLoggedIn(t, base, c)
	}
	read := time.Now() // the instances read it from Redis no earlier than this
	if err := rs.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			rs.Thaw()
		}
	}()
	var mu sync.Mutex
	var lastOK time.Duration
	var wg sync.WaitGroup
	for _, base := range f.bases()[:2] {
		wg.Go(func() {
			for {
				r, err := f.getTimeout(base, c, api, timeout+5*time.Second)
				since := time.Since(read)
				if err != nil {
					t.Errorf("GET %s/private with Redis frozen: %v after %s", base, err, since)
					return
				}
				if r.status == http.StatusServiceUnavailable {
					return
				}
				if r.status != http.StatusOK || since > time.Second+timeout {
					t.Errorf("GET %s/private %s after the last read, Redis frozen: %d %q; want 503 (or a cached 200 within 1 s)", base, since, r.status, r.body)
					return
				}
				mu.Lock()
				lastOK = max(lastOK, since)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, base := range f.bases() {
		f.wantUnavailable(t, base, c, timeout+time.Second)
	}
	t.Logf("Redis frozen: cached 200s until %s after the session was last read, then 503", lastOK.Round(time.Millisecond))
	thawed = true
	if err := rs.Thaw(); err != nil {
		t.Fatal(err)
	}
	for _, base := range f.bases() {
		f.waitLoggedIn(t, base, c, 5*time.Second)
	}
}

// redisprocStart starts redis-server again on port, empty.
func redisprocStart(port int) (*redisproc.Server, error) {
	return redisproc.Start(redisproc.Options{Port: port})
}
