package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/redisstore"
	"github.com/pipaauth/pipaauth/redisstore/internal/redistest"
)

// load is one LoadSession bounded by timeout, as pipaauth makes it, and how
// long it took.
func load(s *redisstore.Store, id string, timeout time.Duration) (uint64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	begin := time.Now()
	_, v, err := s.LoadSession(ctx, id)
	return v, time.Since(begin), err
}

// Redis frozen (SIGSTOP: connections accepted, nothing answered): a cached
// session is served at most CacheTTL after it was read, then every load
// fails within its deadline, never hangs; after the thaw the same session
// loads again, with the same client.
func TestRedisFrozen(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{}) // CacheTTL 1s
	const timeout = 300 * time.Millisecond
	if ok, err := s.CreateSession(ctxT(t, time.Second), "frozen", []byte("x"), "erin", "", time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if v, _, err := load(s, "frozen", timeout); v == 0 || err != nil {
		t.Fatal(v, err)
	}
	read := time.Now() // the cache entry is at most this old
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	var lastServed time.Time
	failures := 0
	for time.Since(read) < redisstore.DefaultCacheTTL+2*time.Second && failures < 5 {
		v, took, err := load(s, "frozen", timeout)
		if took > timeout+200*time.Millisecond {
			t.Errorf("a load took %s with a %s deadline", took, timeout)
		}
		switch {
		case err != nil:
			failures++
		case v != 0:
			lastServed = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if failures == 0 {
		t.Fatal("loads kept succeeding with Redis frozen")
	}
	if served := lastServed.Sub(read); served > redisstore.DefaultCacheTTL+50*time.Millisecond {
		t.Errorf("a cached session was served %s after it was read, with Redis frozen; want at most CacheTTL (%s)", served, redisstore.DefaultCacheTTL)
	}
	t.Logf("with Redis frozen, the cached session was served for %s after it was read (CacheTTL %s), then loads failed within their %s deadline", lastServed.Sub(read).Round(time.Millisecond), redisstore.DefaultCacheTTL, timeout)

	if err := srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitLoad(t, s, "frozen", true)
}

// Redis killed: the connection's end empties the client-side cache at once;
// a new Redis on the same address works again with the same client.
func TestRedisKilledAndRestarted(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{CacheTTL: time.Hour})
	if ok, err := s.CreateSession(ctxT(t, time.Second), "killed", []byte("x"), "fay", "", time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if v, _, err := load(s, "killed", time.Second); v == 0 || err != nil {
		t.Fatal(v, err)
	}
	srv.Stop()
	begin := time.Now()
	var lastServed time.Duration
	for {
		v, _, err := load(s, "killed", 300*time.Millisecond)
		if err != nil || v == 0 {
			break
		}
		lastServed = time.Since(begin)
		if lastServed > time.Second {
			t.Fatal("the cached session is still served 1s after Redis died (CacheTTL 1h)")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("Redis killed: the cached session was last served %s after the kill; the first load refused came back %s after it",
		lastServed.Round(100*time.Microsecond), time.Since(begin).Round(100*time.Microsecond))

	// With the deadline pipaauth gives a load by default (3 s), a refused
	// connection fails at once: the client of docs/redis.md does not retry
	// (DisableRetry), so an outage costs no request its whole timeout.
	if _, took, err := load(s, "killed", 3*time.Second); err == nil {
		t.Error("a load with Redis down did not fail")
	} else if took > time.Second {
		t.Errorf("a load with Redis down failed after %s, want at once (well under the 3 s deadline)", took)
	}

	back, err := redistest.Start(srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Stop)
	waitLoad(t, s, "killed", false) // this Redis lost the data, and answers
	// A write on a connection that died with the old server fails once:
	// scripts are not retried, as a compare-and-set may have run. The next
	// one works.
	var err2 error
	for i := range 3 {
		var ok bool
		ok, err2 = s.CreateSession(ctxT(t, time.Second), "after-"+string(rune('a'+i)), []byte("x"), "fay", "", time.Now().Add(time.Hour))
		if ok && err2 == nil {
			break
		}
		t.Logf("CreateSession after the restart: %v, %v", ok, err2)
	}
	if err2 != nil {
		t.Errorf("CreateSession still fails after the restart: %v", err2)
	}
}

// waitLoad waits up to 5 s for a load of id without error, and checks
// whether it found the session.
func waitLoad(t *testing.T, s *redisstore.Store, id string, found bool) {
	t.Helper()
	begin := time.Now()
	for {
		v, _, err := load(s, id, 300*time.Millisecond)
		if err == nil {
			if (v != 0) != found {
				t.Errorf("after recovery: version %d, want found=%v", v, found)
			}
			t.Logf("recovered %s after Redis came back", time.Since(begin).Round(time.Millisecond))
			return
		}
		if time.Since(begin) > 5*time.Second {
			t.Fatalf("loads still fail 5s after Redis came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
