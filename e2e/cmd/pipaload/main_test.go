package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Reports of wrk 4.x: a clean run, one with error statuses and one with
// socket errors.
const (
	wrkClean = `Running 1s test @ http://127.0.0.1:40013/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   209.60us  814.76us  10.30ms   96.40%
    Req/Sec    22.40k     2.73k   25.42k    70.00%
  22312 requests in 1.00s, 1.60MB read
Requests/sec:  22263.11
Transfer/sec:      1.59MB
`
	wrkNon2xx = `Running 1s test @ http://127.0.0.1:40013/e
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.17ms   18.33ms 108.31ms   89.52%
    Req/Sec     8.79k     8.06k   23.42k    60.00%
  9027 requests in 1.21s, 828.65KB read
  Non-2xx or 3xx responses: 9027
Requests/sec:   7483.17
Transfer/sec:    686.93KB
`
	wrkSocket = `Running 1s test @ http://127.0.0.1:40013/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   209.60us  814.76us  10.30ms   96.40%
    Req/Sec    22.40k     2.73k   25.42k    70.00%
  22312 requests in 1.00s, 1.60MB read
  Socket errors: connect 0, read 3, write 0, timeout 0
Requests/sec:  22263.11
Transfer/sec:      1.59MB
`
)

func TestParseWrk(t *testing.T) {
	res, err := parseWrk(wrkClean)
	if err != nil || res.rps != 22263.11 || res.requests != 22312 {
		t.Errorf("parseWrk(clean) = %+v, %v; want 22263.11 req/s, 22312 requests", res, err)
	}
	for name, out := range map[string]string{"non-2xx": wrkNon2xx, "socket errors": wrkSocket, "empty": "", "usage": "Usage: wrk <options> <url>\n"} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("parseWrk(%s) succeeded, want an error", name)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags(nil, new(bytes.Buffer))
	if err != nil || cfg.duration != 10*time.Second || cfg.connections != 32 || cfg.threads != 2 || cfg.pairs != 3 || len(cfg.stores) != 1 || cfg.stores[0].Store != storeCookie {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{
		{"-duration", "500ms"}, {"-duration", "1500ms"}, {"-threads", "4", "-connections", "2"},
		{"-pairs", "0"}, {"-warmup", "-1s"}, {"extra"}, {"-nosuchflag"},
		{"-store", "memcached"}, {"-store", "redis,redis"}, {"-store", ""}, {"-store", "cookie,"},
	} {
		if _, err := parseFlags(args, new(bytes.Buffer)); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}

func TestWrkNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-duration", "1s"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := "wrk not found: install it with `apt-get install wrk`"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want it to contain %q", stderr.String(), want)
	}
}

func TestUnknownStore(t *testing.T) {
	if a, err := startApp(context.Background(), appOptions{Store: "nosuch"}); err == nil {
		a.Close()
		t.Fatal("startApp with an unknown store succeeded")
	}
}

// TestApp runs everything but wrk: the login, the checks, and the counters
// that catch requests not reaching the handler.
func TestApp(t *testing.T) {
	ctx := context.Background()
	a, err := startApp(ctx, appOptions{Store: storeCookie})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !strings.HasPrefix(a.URL, "http://127.0.0.1:") {
		t.Errorf("app URL %q is not on loopback", a.URL)
	}
	cookie, err := a.login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cookie, "pipaauth=") {
		t.Errorf("cookie %q", cookie)
	}
	before := a.served(routeGuarded)
	if err := a.verify(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	if got := a.served(routeGuarded) - before; got != 1 {
		t.Errorf("guarded handler served %d requests during verify, want 1 (with the cookie only)", got)
	}
	if err := a.verify(ctx, "pipaauth=forged"); err == nil {
		t.Error("verify with a forged cookie succeeded")
	}
	// A request the guard redirects is not counted.
	before = a.served(routeGuarded)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if status, _, _, err := get(ctx, client, a.URL+routeGuarded, ""); err != nil || status != http.StatusFound {
		t.Fatalf("GET %s without a cookie: %d, %v; want 302", routeGuarded, status, err)
	}
	if got := a.served(routeGuarded) - before; got != 0 {
		t.Errorf("a redirected request was counted as served (%d)", got)
	}
}

// TestAppRedis is TestApp's login and checks with sessions in a private
// Redis (-store redis).
func TestAppRedis(t *testing.T) {
	for _, store := range []string{storeRedis, storeRedisstore} {
		t.Run(store, func(t *testing.T) { testAppRedis(t, store) })
	}
}

func testAppRedis(t *testing.T, store string) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("PIPAAUTH_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found (PIPAAUTH_REQUIRE_REDIS=1)")
		}
		t.Skip("redis-server not found: install it with `apt-get install redis-server`")
	}
	ctx := context.Background()
	a, err := startApp(ctx, appOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	rs := a.redis
	cookie, err := a.login(ctx)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	if err := a.verify(ctx, cookie); err != nil {
		t.Error(err)
	}
	if err := a.verify(ctx, "pipaauth=forged"); err == nil {
		t.Error("verify with a forged cookie succeeded")
	}
	a.Close()
	select {
	case <-rs.Done():
	default:
		t.Error("Close left redis-server running")
	}
}

func TestPrintStoreTable(t *testing.T) {
	var runs []runResult
	for pair := 1; pair <= 3; pair++ {
		runs = append(runs,
			runResult{pair: pair, route: routeBare, rps: 1000},
			runResult{pair: pair, route: routeGuarded, store: storeCookie, rps: 900},
			runResult{pair: pair, route: routeGuarded, store: storeRedis, rps: 450, commands: 1},
			runResult{pair: pair, route: routeGuarded, store: storeRedisstore, rps: 850, commands: 0.001})
	}
	var out bytes.Buffer
	printStoreTable(&out, runs, []string{storeCookie, storeRedis, storeRedisstore})
	for _, want := range []string{"guarded-cookie/bare = 0.900", "guarded-redistore/bare = 0.450", "guarded-redistore/guarded-cookie = 0.500",
		"guarded-redisstore/bare = 0.850", "guarded-redisstore/guarded-cookie = 0.944", "over 3 rounds",
		"guarded-redistore: Redis commands per guarded request = 1.0000", "guarded-redisstore: Redis commands per guarded request = 0.0010"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSumCalls(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_get:calls=10,usec=5,usec_per_call=0.5\r\ncmdstat_info:calls=7,usec=1\r\ncmdstat_evalsha:calls=3,usec=9\r\n"
	if n, err := sumCalls(info); n != 13 || err != nil {
		t.Errorf("sumCalls = %d, %v; want 13 (INFO left out)", n, err)
	}
	if _, err := sumCalls("cmdstat_get:calls=x,usec=1\r\n"); err == nil {
		t.Error("sumCalls accepted a malformed count")
	}
}
