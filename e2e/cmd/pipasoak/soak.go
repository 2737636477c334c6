package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/session"
)

// report holds the soak's numbers and the outcome of its checks.
type report struct {
	cfg                 config
	warmups             int
	logins, requests    atomic.Int64
	logouts             atomic.Int64
	failures            atomic.Int64
	mu                  sync.Mutex
	firstFailures       []string
	elapsed             time.Duration
	loginLat, reqLat    []time.Duration
	goroutines          [2]int    // before, after
	heap                [2]uint64 // HeapInuse before, after
	routed              [2]int64
	sessionKeys, dbsize int
	indexKeys           int    // redisstore's sub and sid indexes
	subSidKeys          [2]int // of which sub, sid
	ttlMin, ttlMax      int
	redisMemory         string
	keptLoggedIn        int
	keysAfterLogout     int
	logInfo, logWarn    int
	logFirst            []string
	checks              []check
}

type check struct {
	ok   bool
	what string
}

func (r *report) fail(format string, args ...any) {
	r.failures.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.firstFailures) < 10 {
		r.firstFailures = append(r.firstFailures, fmt.Sprintf(format, args...))
	}
}

func (r *report) check(ok bool, format string, args ...any) {
	r.checks = append(r.checks, check{ok, fmt.Sprintf(format, args...)})
}

func (r *report) failed() []string {
	var bad []string
	for _, c := range r.checks {
		if !c.ok {
			bad = append(bad, c.what)
		}
	}
	return bad
}

// soak runs the whole soak and returns its report, and an error when a check
// failed or the run could not be done.
func soak(ctx context.Context, cfg config, stdout io.Writer) (*report, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	rep := &report{cfg: cfg}
	e, err := start(ctx, cfg, cfg.workers)
	if err != nil {
		return nil, err
	}
	defer e.close()
	fmt.Fprintf(stdout, "pipasoak: PiPA %s (child process), instances %s and %s behind %s, Redis %s\n", e.issuer, e.apps[0].URL, e.apps[1].URL, e.url, e.redis.Addr)

	tr := &http.Transport{MaxIdleConnsPerHost: 2 * cfg.workers, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	closeIdle := func() {
		tr.CloseIdleConnections()
		e.closeIdle()
	}

	// Warm-up: one full cycle per worker at once, so that every pool and
	// cache has its steady size before the baseline.
	var wg sync.WaitGroup
	for range cfg.workers {
		wg.Go(func() {
			b := newBrowser(tr, e)
			if _, err := b.login(ctx); err != nil {
				rep.fail("warm-up login: %v", err)
				return
			}
			if _, err := b.get(ctx); err != nil {
				rep.fail("warm-up request: %v", err)
			}
			if err := b.logout(ctx); err != nil {
				rep.fail("warm-up logout: %v", err)
			}
		})
	}
	wg.Wait()
	rep.warmups = cfg.workers
	if rep.failures.Load() > 0 {
		return rep, fmt.Errorf("the warm-up failed: %s", strings.Join(rep.firstFailures, "; "))
	}
	rep.loginLat = make([]time.Duration, cfg.logins)
	rep.reqLat = make([]time.Duration, cfg.requests)
	kept := make([]*browser, 0, cfg.keep)
	closeIdle()
	rep.goroutines[0], rep.heap[0] = measure()

	// The run: workers share the browsers; browser i makes its share of the
	// requests; the kept ones (spread evenly) do not log out.
	var next, reqIndex atomic.Int64
	var keptMu sync.Mutex
	began := time.Now()
	for range cfg.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.logins {
					return
				}
				b := newBrowser(tr, e)
				took, err := b.login(ctx)
				if err != nil {
					rep.fail("login %d: %v", i, err)
					continue
				}
				rep.loginLat[rep.logins.Add(1)-1] = took
				share := cfg.requests / cfg.logins
				if i < cfg.requests%cfg.logins {
					share++
				}
				for range share {
					took, err := b.get(ctx)
					if err != nil {
						rep.fail("browser %d: %v", i, err)
						continue
					}
					if j := reqIndex.Add(1) - 1; int(j) < len(rep.reqLat) {
						rep.reqLat[j] = took
					}
					rep.requests.Add(1)
				}
				if (i*cfg.keep)/cfg.logins != ((i+1)*cfg.keep)/cfg.logins {
					keptMu.Lock()
					kept = append(kept, b)
					keptMu.Unlock()
					continue
				}
				if err := b.logout(ctx); err != nil {
					rep.fail("logout %d: %v", i, err)
					continue
				}
				rep.logouts.Add(1)
			}
		})
	}
	wg.Wait()
	rep.elapsed = time.Since(began)
	rep.loginLat = rep.loginLat[:rep.logins.Load()]
	rep.reqLat = rep.reqLat[:min(int(reqIndex.Load()), len(rep.reqLat))]
	if err := ctx.Err(); err != nil {
		rep.check(false, "the run ended within -timeout %s (%v)", cfg.timeout, err)
	}

	// The kept browsers are still logged in, on both instances.
	for _, b := range kept {
		ok := true
		for range 2 {
			if _, err := b.get(ctx); err != nil {
				rep.fail("kept browser: %v", err)
				ok = false
			}
		}
		if ok {
			rep.keptLoggedIn++
		}
	}

	closeIdle()
	rep.goroutines[1], rep.heap[1] = measure()
	rep.routed = [2]int64{e.routed[0].Load(), e.routed[1].Load()}

	// Redis holds exactly the kept sessions, each with a TTL.
	c, err := redisproc.Dial(e.redis.Addr, 10*time.Second)
	if err != nil {
		return rep, err
	}
	defer c.Close()
	ttls, err := keyTTLs(c, sessionPattern(cfg.store))
	if err != nil {
		return rep, err
	}
	var indexTTLs []int
	if cfg.store == storeRedisstore {
		for i, pattern := range []string{rsPrefix + "{*}:sub:*", rsPrefix + "{*}:sid:*"} {
			t, err := keyTTLs(c, pattern)
			if err != nil {
				return rep, err
			}
			rep.subSidKeys[i] = len(t)
			indexTTLs = append(indexTTLs, t...)
		}
	}
	rep.indexKeys = len(indexTTLs)
	rep.sessionKeys = len(ttls)
	ttls = append(ttls, indexTTLs...)
	rep.dbsize, _ = redis.Int(c.Do("DBSIZE"))
	if len(ttls) > 0 {
		rep.ttlMin, rep.ttlMax = slices.Min(ttls), slices.Max(ttls)
	}
	if info, err := redis.String(c.Do("INFO", "memory")); err == nil {
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory_human:"); ok {
				rep.redisMemory = v
			}
		}
	}

	// Then the kept browsers log out too, and nothing is left.
	for _, b := range kept {
		if err := b.logout(ctx); err != nil {
			rep.fail("kept browser's logout: %v", err)
		}
	}
	if left, err := keyTTLs(c, sessionPattern(cfg.store)); err == nil {
		rep.keysAfterLogout = len(left)
	} else {
		return rep, err
	}
	dbsizeAfter, _ := redis.Int(c.Do("DBSIZE"))
	rep.logInfo, rep.logWarn, rep.logFirst = e.logs.counts()

	// Records outlive the login by session.ExpiredGrace, so a logout after
	// expiry can still send its ID token as id_token_hint.
	lifetime := int((pipaauth.DefaultSessionLifetime + session.ExpiredGrace) / time.Second)
	rep.check(rep.logins.Load() == int64(cfg.logins), "every login done: %d of %d", rep.logins.Load(), cfg.logins)
	rep.check(rep.requests.Load() == int64(cfg.requests), "every guarded request answered 200 for the user: %d of %d", rep.requests.Load(), cfg.requests)
	rep.check(rep.failures.Load() == 0, "no failed operation: %d", rep.failures.Load())
	rep.check(rep.logWarn == 0, "no warning or error logged by pipaauth or the proxy: %d", rep.logWarn)
	rep.check(rep.goroutines[1]-rep.goroutines[0] <= cfg.maxGoroutines, "goroutines %d → %d: growth %+d within %d", rep.goroutines[0], rep.goroutines[1], rep.goroutines[1]-rep.goroutines[0], cfg.maxGoroutines)
	growth := int64(rep.heap[1]) - int64(rep.heap[0])
	rep.check(growth <= int64(cfg.maxHeapMiB)<<20, "heap in use %s → %s: growth %s within %d MiB", mib(rep.heap[0]), mib(rep.heap[1]), signedMiB(growth), cfg.maxHeapMiB)
	rep.check(rep.sessionKeys == cfg.keep && rep.dbsize == cfg.keep+rep.indexKeys, "Redis holds exactly the %d live sessions: %d session keys, DBSIZE %d", cfg.keep, rep.sessionKeys, rep.dbsize)
	if cfg.store == storeRedisstore {
		// One user (pipatest's alice): one sub index while any session
		// lives; each browser has its own provider session, so at most one
		// sid index per live session.
		rep.check(rep.subSidKeys[0] == min(cfg.keep, 1) && rep.subSidKeys[1] <= cfg.keep,
			"redisstore's indexes: %d sub index for the one user, %d sid indexes for %d live sessions", rep.subSidKeys[0], rep.subSidKeys[1], cfg.keep)
	}
	rep.check(len(ttls) == 0 || (rep.ttlMin > 0 && rep.ttlMax <= lifetime), "every session and index key has a TTL in (0, %ds]: %d..%d", lifetime, rep.ttlMin, rep.ttlMax)
	rep.check(rep.keptLoggedIn == len(kept) && len(kept) == cfg.keep, "the %d kept browsers are still logged in: %d", cfg.keep, rep.keptLoggedIn)
	rep.check(rep.keysAfterLogout == 0, "after they log out too, Redis holds no session: %d", rep.keysAfterLogout)
	rep.check(dbsizeAfter == 0, "and no key at all (indexes went with their sessions): DBSIZE %d", dbsizeAfter)
	if bad := rep.failed(); len(bad) > 0 {
		return rep, errors.New(strings.Join(bad, "; "))
	}
	return rep, nil
}

// keyTTLs returns the TTL of every key matching pattern.
func keyTTLs(c redis.Conn, pattern string) ([]int, error) {
	var ttls []int
	cursor := "0"
	for {
		v, err := redis.Values(c.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			return nil, fmt.Errorf("SCAN: %w", err)
		}
		cursor, _ = redis.String(v[0], nil)
		keys, _ := redis.Strings(v[1], nil)
		for _, k := range keys {
			ttl, err := redis.Int(c.Do("TTL", k))
			if err != nil {
				return nil, fmt.Errorf("TTL %s: %w", k, err)
			}
			ttls = append(ttls, ttl)
		}
		if cursor == "0" {
			return ttls, nil
		}
	}
}

// measure returns the goroutine count and the heap in use once whatever is
// on its way out has gone.
func measure() (int, uint64) {
	var ms runtime.MemStats
	for range 5 {
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func signedMiB(n int64) string { return fmt.Sprintf("%+.1f MiB", float64(n)/(1<<20)) }

// browser is one simulated user agent: its own cookie jar, a shared
// transport, redirects followed by hand so every hop is checked.
type browser struct {
	e      *env
	jar    *cookiejar.Jar
	client *http.Client
}

func newBrowser(tr http.RoundTripper, e *env) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, jar: jar, client: &http.Client{
		Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// hop sends one request and returns the status, the Location and the body.
func (b *browser) hop(ctx context.Context, method, rawURL string, header http.Header) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return 0, "", "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header.Get("Location"), string(body), err
}

// login walks the code flow from a protected page: 302 to PiPA, 302 back to
// the callback, 303 to the page, 200 with the user.
func (b *browser) login(ctx context.Context) (time.Duration, error) {
	began := time.Now()
	steps := []struct {
		status int
		prefix string // of the Location
	}{
		{http.StatusFound, b.e.issuer + "/authorize?"},
		{http.StatusFound, b.e.url + "/callback?"},
		{http.StatusSeeOther, "/private"},
	}
	at := b.e.url + "/private"
	for _, s := range steps {
		status, loc, body, err := b.hop(ctx, http.MethodGet, at, nil)
		if err != nil {
			return 0, err
		}
		if status != s.status || !strings.HasPrefix(loc, s.prefix) {
			return 0, fmt.Errorf("GET %s: %d to %q, want %d to %s…: %.200s", short(at), status, loc, s.status, s.prefix, body)
		}
		next, err := url.Parse(at)
		if err == nil {
			next, err = next.Parse(loc)
		}
		if err != nil {
			return 0, err
		}
		at = next.String()
	}
	status, _, body, err := b.hop(ctx, http.MethodGet, at, nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK || !strings.Contains(body, "user=alice@example.com") {
		return 0, fmt.Errorf("landing on %s: %d %.200q, want 200 for alice", short(at), status, body)
	}
	return time.Since(began), nil
}

// get makes one guarded request through the proxy.
func (b *browser) get(ctx context.Context) (time.Duration, error) {
	began := time.Now()
	status, loc, body, err := b.hop(ctx, http.MethodGet, b.e.url+"/private", nil)
	took := time.Since(began)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK || !strings.Contains(body, "user=alice@example.com") {
		return 0, fmt.Errorf("GET /private: %d (Location %q) %.200q, want 200 for alice", status, loc, body)
	}
	return took, nil
}

// logout posts the same-origin logout form and checks the cookie is gone.
func (b *browser) logout(ctx context.Context) error {
	status, loc, _, err := b.hop(ctx, http.MethodPost, b.e.url+"/logout", http.Header{"Sec-Fetch-Site": {"same-origin"}})
	if err != nil {
		return err
	}
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, b.e.issuer+"/end_session") {
		return fmt.Errorf("POST /logout: %d to %q, want 303 to PiPA's end_session", status, loc)
	}
	u, _ := url.Parse(b.e.url)
	// PiPA's own session cookie shares the host (cookies ignore ports).
	cs := slices.DeleteFunc(b.jar.Cookies(u), func(c *http.Cookie) bool { return c.Name == pipatest.SessionCookie })
	if len(cs) != 0 {
		return fmt.Errorf("after logout the browser still holds %v", cs)
	}
	return nil
}

func short(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func (r *report) print(w io.Writer) {
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(float64(len(d))*p))]
	}
	slices.Sort(r.loginLat)
	slices.Sort(r.reqLat)
	secs := r.elapsed.Seconds()
	if secs == 0 {
		secs = 1
	}
	fmt.Fprintf(w, "pipasoak: %d logins and %d guarded requests (+%d warm-up logins) by %d workers in %s; %d kept logged in\n",
		r.logins.Load(), r.requests.Load(), r.warmups, r.cfg.workers, r.elapsed.Round(time.Millisecond), r.keptLoggedIn)
	fmt.Fprintf(w, "  throughput  %.0f logins/s and %.0f requests/s together; the proxy routed %d / %d requests to instances a / b\n",
		float64(r.logins.Load())/secs, float64(r.requests.Load())/secs, r.routed[0], r.routed[1])
	fmt.Fprintf(w, "  login       p50 %s  p99 %s  max %s  (4 round trips, code exchange, ID token check, the store's writes)\n",
		pct(r.loginLat, .5).Round(time.Microsecond), pct(r.loginLat, .99).Round(time.Microsecond), pct(r.loginLat, 1).Round(time.Microsecond))
	fmt.Fprintf(w, "  request     p50 %s  p99 %s  max %s  (through the proxy; redistore: one Redis GET; redisstore: from the client-side cache within 1 s of a read)\n",
		pct(r.reqLat, .5).Round(time.Microsecond), pct(r.reqLat, .99).Round(time.Microsecond), pct(r.reqLat, 1).Round(time.Microsecond))
	fmt.Fprintf(w, "  goroutines  %d → %d (%+d);  heap in use %s → %s (%s)\n",
		r.goroutines[0], r.goroutines[1], r.goroutines[1]-r.goroutines[0], mib(r.heap[0]), mib(r.heap[1]), signedMiB(int64(r.heap[1])-int64(r.heap[0])))
	fmt.Fprintf(w, "  Redis       store %s: %d session keys, %d index keys (DBSIZE %d), TTL %d..%ds, used memory %s; %d sessions after the kept browsers logged out\n",
		r.cfg.store, r.sessionKeys, r.indexKeys, r.dbsize, r.ttlMin, r.ttlMax, r.redisMemory, r.keysAfterLogout)
	fmt.Fprintf(w, "  logs        %d info lines, %d warnings or errors\n", r.logInfo, r.logWarn)
	for _, l := range r.logFirst {
		fmt.Fprintf(w, "    %s\n", l)
	}
	if n := r.failures.Load(); n > 0 {
		fmt.Fprintf(w, "  failures    %d, first ones:\n", n)
		for _, f := range r.firstFailures {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	for _, c := range r.checks {
		mark := "ok  "
		if !c.ok {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, c.what)
	}
}
