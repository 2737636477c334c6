package redisstore_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/redisstore"
)

// *Store is both a gorilla store and a pipaauth.RevocableStore.
var (
	_ sessions.Store          = (*redisstore.Store)(nil)
	_ pipaauth.RevocableStore = (*redisstore.Store)(nil)
)

func TestNewChecksOptions(t *testing.T) {
	if _, err := redisstore.New(nil, redisstore.Options{}); err == nil {
		t.Error("New accepted a nil client")
	}
	srv := startRedis(t)
	c := newClient(t, srv.Addr)
	for name, opt := range map[string]redisstore.Options{
		"odd KeyPairs":     {KeyPairs: [][]byte{securecookie.GenerateRandomKey(32)}},
		"negative Timeout": {Timeout: -time.Second},
	} {
		if _, err := redisstore.New(c, opt); err == nil {
			t.Errorf("New accepted %s", name)
		}
	}
}

func TestGorillaRoundTrip(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{KeyPairs: [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}})

	req := httptest.NewRequest("GET", "/", nil)
	sess, err := s.Get(req, "app")
	if err != nil || !sess.IsNew {
		t.Fatalf("Get without a cookie = %+v, %v; want a new session", sess, err)
	}
	sess.Values["user"] = "alice"
	sess.Values[42] = []string{"a", "b"}
	rec := httptest.NewRecorder()
	if err := sess.Save(req, rec); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Value == sess.ID || !cookies[0].HttpOnly {
		t.Fatalf("cookies %+v: want one HttpOnly cookie holding the sealed id", cookies)
	}
	if ttl := r.int("PTTL", "pipaauth:s:"+sess.ID); ttl <= 0 || ttl > redisstore.DefaultMaxAge*1000 {
		t.Errorf("session key PTTL %d, want up to %d s", ttl, redisstore.DefaultMaxAge)
	}

	req2 := httptest.NewRequest("GET", "/", nil)
	req2.AddCookie(cookies[0])
	got, err := s.New(req2, "app")
	if err != nil || got.IsNew || got.Values["user"] != "alice" || !slices.Equal(got.Values[42].([]string), []string{"a", "b"}) {
		t.Fatalf("New with the cookie = %+v, %v", got, err)
	}

	// A cookie sealed with other keys is a new session.
	other := newStore(t, newClient(t, srv.Addr), redisstore.Options{KeyPairs: [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}})
	if got, _ := other.New(req2, "app"); !got.IsNew {
		t.Error("a store with other keys opened the cookie")
	}

	got.Options.MaxAge = -1
	if err := got.Save(req2, httptest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	if n := r.int("EXISTS", "pipaauth:s:"+sess.ID); n != 0 {
		t.Error("MaxAge -1 did not delete the session")
	}
	if got, err := s.New(req2, "app"); err != nil || !got.IsNew {
		t.Errorf("New after the delete = %+v, %v; want a new session", got, err)
	}

	noKeys := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	if _, err := noKeys.New(req, "app"); err == nil {
		t.Error("the gorilla methods worked without KeyPairs")
	}
}

// Two instances, each with its own client: a delete on one is seen by the
// other within 100 ms while it had the session cached, and the cached loads
// cost no Redis command.
func TestInvalidationAcrossInstances(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	a := newStore(t, newClient(t, srv.Addr), redisstore.Options{CacheTTL: time.Minute})
	b := newStore(t, newClient(t, srv.Addr), redisstore.Options{CacheTTL: time.Minute})
	exp := time.Now().Add(time.Hour)

	var worst time.Duration
	var total time.Duration
	const rounds = 20
	for i := range rounds {
		id := "inv-" + string(rune('a'+i))
		if ok, err := a.CreateSession(ctxT(t, time.Second), id, []byte("data"), "sub", "", exp); !ok || err != nil {
			t.Fatalf("CreateSession = %v, %v", ok, err)
		}
		if _, v, err := b.LoadSession(ctxT(t, time.Second), id); v == 0 || err != nil {
			t.Fatalf("instance b does not see the session: %v, %v", v, err)
		}
		before := r.commands("hmget")
		for range 100 {
			if _, v, err := b.LoadSession(ctxT(t, time.Second), id); v == 0 || err != nil {
				t.Fatalf("cached load: %v, %v", v, err)
			}
		}
		if n := r.commands("hmget") - before; n != 0 {
			t.Fatalf("100 cached loads ran HMGET %d times on Redis, want 0", n)
		}
		begin := time.Now()
		if err := a.DeleteSession(ctxT(t, time.Second), id); err != nil {
			t.Fatal(err)
		}
		for {
			_, v, err := b.LoadSession(ctxT(t, time.Second), id)
			if err != nil {
				t.Fatal(err)
			}
			if v == 0 {
				break
			}
			if time.Since(begin) > time.Second {
				t.Fatal("instance b still serves the deleted session after 1 s")
			}
			time.Sleep(100 * time.Microsecond)
		}
		took := time.Since(begin)
		total += took
		worst = max(worst, took)
	}
	t.Logf("delete on one instance seen by the other: mean %s, worst %s over %d rounds", total/rounds, worst, rounds)
	if worst > 100*time.Millisecond {
		t.Errorf("a delete took %s to reach the other instance, want within 100ms", worst)
	}
}

func TestCompareAndSet(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	ctx := ctxT(t, 5*time.Second)
	exp := time.Now().Add(time.Hour)

	if ok, err := s.CreateSession(ctx, "cas", []byte("v1"), "alice", "op-1", exp); !ok || err != nil {
		t.Fatalf("CreateSession = %v, %v", ok, err)
	}
	if ok, err := s.CreateSession(ctx, "cas", []byte("other"), "", "", exp); ok || err != nil {
		t.Errorf("CreateSession over an existing id = %v, %v; want false", ok, err)
	}
	data, v1, err := s.LoadSession(ctx, "cas")
	if string(data) != "v1" || v1 == 0 || err != nil {
		t.Fatalf("LoadSession = %q, %d, %v", data, v1, err)
	}
	if ok, err := s.ReplaceSession(ctx, "cas", v1, []byte("v2"), "alice", "op-1", exp); !ok || err != nil {
		t.Fatalf("ReplaceSession at the current version = %v, %v", ok, err)
	}
	if ok, _ := s.ReplaceSession(ctx, "cas", v1, []byte("stale"), "alice", "op-1", exp); ok {
		t.Error("ReplaceSession at a stale version succeeded")
	}
	data, v2, _ := s.LoadSession(ctx, "cas")
	if string(data) != "v2" || v2 == v1 {
		t.Errorf("after replace: %q at version %d (was %d), want v2 at a new version", data, v2, v1)
	}
	if err := s.DeleteSession(ctx, "cas"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.ReplaceSession(ctx, "cas", v2, []byte("revived"), "alice", "op-1", exp); ok {
		t.Error("ReplaceSession after a delete succeeded")
	}
	if n := r.int("EXISTS", "pipaauth:s:cas", "pipaauth:sub:alice", "pipaauth:sid:op-1"); n != 0 {
		t.Errorf("%d keys of the deleted session (or its indexes) remain, want 0", n)
	}
	if err := s.DeleteSession(ctx, "cas"); err != nil {
		t.Errorf("deleting a missing session: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	a := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	b := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	ctx := ctxT(t, 10*time.Second)
	exp := time.Now().Add(time.Hour)
	for _, s := range []struct{ id, sub, sid string }{
		{"a1", "alice", "op-1"}, {"a2", "alice", "op-2"}, {"a3", "alice", ""}, {"b1", "bob", "op-1b"},
	} {
		if ok, err := a.CreateSession(ctx, s.id, []byte(s.id), s.sub, s.sid, exp); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if _, v, _ := b.LoadSession(ctx, s.id); v == 0 { // cached on b
			t.Fatalf("%s not loaded", s.id)
		}
	}
	if n, err := a.RevokeSID(ctx, "op-1"); n != 1 || err != nil {
		t.Errorf("RevokeSID = %d, %v; want 1", n, err)
	}
	if n, err := a.RevokeSID(ctx, "no-such-sid"); n != 0 || err != nil {
		t.Errorf("RevokeSID of an unknown sid = %d, %v; want 0", n, err)
	}
	if n, err := a.RevokeSubject(ctx, "alice"); n != 2 || err != nil {
		t.Errorf("RevokeSubject = %d, %v; want the 2 sessions left", n, err)
	}
	deadline := time.Now().Add(time.Second)
	for _, id := range []string{"a1", "a2", "a3"} {
		for {
			_, v, err := b.LoadSession(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if v == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance b still serves revoked session %s", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if _, v, _ := b.LoadSession(ctx, "b1"); v == 0 {
		t.Error("bob's session was revoked with alice's")
	}
	if n := r.int("EXISTS", "pipaauth:sub:alice", "pipaauth:sid:op-1", "pipaauth:sid:op-2"); n != 0 {
		t.Errorf("%d index keys of revoked sessions remain", n)
	}
	if n := r.int("ZCARD", "pipaauth:sub:bob"); n != 1 {
		t.Errorf("bob's index has %d members, want 1", n)
	}
}

// A write-back racing a revocation never brings the session back: whatever
// the interleaving, once RevokeSubject has returned the session is gone.
func TestRevokeRacingWriteBacks(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	writer := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	revoker := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	ctx := ctxT(t, 30*time.Second)
	exp := time.Now().Add(time.Hour)
	for round := range 30 {
		id := "race-" + time.Now().Format("150405.000000") + string(rune('a'+round%26))
		if ok, err := writer.CreateSession(ctx, id, []byte("x"), "carol", "op-c", exp); !ok || err != nil {
			t.Fatal(ok, err)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, v, err := writer.LoadSession(ctx, id)
					if err != nil || v == 0 {
						return
					}
					writer.ReplaceSession(ctx, id, v, []byte("refreshed"), "carol", "op-c", exp)
				}
			})
		}
		time.Sleep(time.Millisecond)
		if _, err := revoker.RevokeSubject(ctx, "carol"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // let the writers run into the revocation
		close(stop)
		wg.Wait()
		if n := r.int("EXISTS", "pipaauth:s:"+id); n != 0 {
			t.Fatalf("round %d: a write-back revived the revoked session", round)
		}
	}
}

func TestIndexTTL(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	ctx := ctxT(t, 10*time.Second)
	now := time.Now()

	if ok, err := s.CreateSession(ctx, "short", []byte("x"), "dave", "op-d", now.Add(300*time.Millisecond)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := s.CreateSession(ctx, "long", []byte("x"), "dave", "", now.Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	for _, tt := range []struct {
		key      string
		min, max time.Duration
	}{
		{"pipaauth:s:short", 0, 300 * time.Millisecond},
		{"pipaauth:sid:op-d", 0, 300 * time.Millisecond},
		{"pipaauth:s:long", 59 * time.Minute, time.Hour},
		{"pipaauth:sub:dave", 59 * time.Minute, time.Hour}, // the latest member's expiry
	} {
		ttl := time.Duration(r.int("PTTL", tt.key)) * time.Millisecond
		if ttl <= tt.min || ttl > tt.max {
			t.Errorf("PTTL %s = %s, want in (%s, %s]", tt.key, ttl, tt.min, tt.max)
		}
	}
	time.Sleep(400 * time.Millisecond)
	if n := r.int("EXISTS", "pipaauth:s:short", "pipaauth:sid:op-d"); n != 0 {
		t.Errorf("%d keys of the expired session remain", n)
	}
	// The expired member leaves the sub index at its next write.
	if ok, err := s.CreateSession(ctx, "another", []byte("x"), "dave", "", now.Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	members, err := r.do("ZRANGE", "pipaauth:sub:dave", "0", "-1").AsStrSlice()
	if err != nil || !slices.Equal(members, []string{"another", "long"}) && !slices.Equal(members, []string{"long", "another"}) {
		t.Errorf("sub index members %v, %v; want long and another", members, err)
	}
}

func TestRemember(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	a := newStore(t, newClient(t, srv.Addr), redisstore.Options{KeyPrefix: "app1:"})
	b := newStore(t, newClient(t, srv.Addr), redisstore.Options{KeyPrefix: "app1:"})
	ctx := ctxT(t, 5*time.Second)
	if first, err := a.Remember(ctx, "jti-1", time.Minute); !first || err != nil {
		t.Fatalf("first Remember = %v, %v", first, err)
	}
	if first, err := b.Remember(ctx, "jti-1", time.Minute); first || err != nil {
		t.Errorf("Remember on another instance = %v, %v; want false", first, err)
	}
	if ttl := r.int("PTTL", "app1:seen:jti-1"); ttl <= 0 || ttl > 60_000 {
		t.Errorf("PTTL = %d ms, want up to 60000", ttl)
	}
	// Forget on one instance lets the key be recorded again on another.
	if err := a.Forget(ctx, "jti-1"); err != nil {
		t.Fatal(err)
	}
	if first, err := b.Remember(ctx, "jti-1", time.Minute); !first || err != nil {
		t.Errorf("Remember after Forget = %v, %v; want true", first, err)
	}
	if err := a.Forget(ctx, "never-recorded"); err != nil {
		t.Errorf("Forget of a missing key: %v", err)
	}
	if _, err := a.Remember(ctx, "jti-2", 0); err == nil {
		t.Error("Remember accepted ttl 0")
	}
	// Remembered looks a key up on any instance without recording it.
	if found, err := a.Remembered(ctx, "jti-1"); !found || err != nil {
		t.Errorf("Remembered of a recorded key = %v, %v; want true", found, err)
	}
	for range 2 {
		if found, err := b.Remembered(ctx, "jti-3"); found || err != nil {
			t.Errorf("Remembered of a missing key = %v, %v; want false", found, err)
		}
	}
	if first, err := a.Remember(ctx, "jti-3", time.Minute); !first || err != nil {
		t.Errorf("Remember after Remembered = %v, %v; want true (Remembered records nothing)", first, err)
	}
}

// Memory per session, for docs/redis.md.
func TestMemoryPerSession(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	usage := func() int64 {
		keys, err := r.do("KEYS", "*").AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, k := range keys {
			total += r.int("MEMORY", "USAGE", k)
		}
		return total
	}
	data := make([]byte, 120)                                                                                     // a session with a user id, an email and timestamps
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36" // 101 bytes
	sub := "sub-0123456789abcdef0123456789abcdef"
	create := func(sid string) {
		t.Helper()
		id, _ := s.NewSessionID(sub)
		if ok, err := s.CreateListedSession(ctxT(t, time.Second), id, data, sub, sid, time.Now().Add(time.Hour), time.Now(), ua); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	create("sid-0123456789abcdef0123456789abcdef")
	total := usage()
	t.Logf("Redis memory of one session of %d bytes (User-Agent of %d) with its sub and sid indexes: %d bytes", len(data), len(ua), total)
	// A second session of the same user: its own key, and one more member
	// of the sub index.
	create("")
	second := usage() - total
	t.Logf("a second session of the same user, without sid: %d bytes", second)
	if total <= 0 || total > 2048 || second <= 0 || second > 1024 {
		t.Errorf("one session costs %d bytes of Redis memory, a second one %d", total, second)
	}
}

// doneCounter is a context that counts the calls to Done and Err: pipaauth
// starts its deadline's timer only on those, so a cached load that makes
// none costs no timer.
type doneCounter struct {
	context.Context
	calls atomic.Int32
}

func (c *doneCounter) Done() <-chan struct{} { c.calls.Add(1); return c.Context.Done() }
func (c *doneCounter) Err() error            { c.calls.Add(1); return c.Context.Err() }

func TestCachedLoadWaitsOnNothing(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{CacheTTL: time.Minute})
	if ok, err := s.CreateSession(ctxT(t, time.Second), "hit", []byte("x"), "gus", "", time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// For 100 ms after its own write the store reads the id from Redis
	// (TestReadYourOwnWrites); the cache serves it after that.
	time.Sleep(150 * time.Millisecond)
	if _, v, err := s.LoadSession(ctxT(t, time.Second), "hit"); v == 0 || err != nil {
		t.Fatal(v, err)
	}
	ctx := &doneCounter{Context: ctxT(t, time.Second)}
	for range 10 {
		if _, v, err := s.LoadSession(ctx, "hit"); v == 0 || err != nil {
			t.Fatal(v, err)
		}
	}
	if n := ctx.calls.Load(); n != 0 {
		t.Errorf("10 cached loads called the context's Done or Err %d times, want 0 (each would start pipaauth's deadline timer)", n)
	}
}

// A Store reads its own writes at once: a load right after its own replace
// or delete never gets the version from before, although rueidis may have
// sent the write on another connection than the cached read, whose
// invalidation then arrives a moment later.
func TestReadYourOwnWrites(t *testing.T) {
	srv := startRedis(t)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}, PipelineMultiplex: 2}) // 4 connections
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s := newStore(t, c, redisstore.Options{CacheTTL: time.Hour})
	ctx := ctxT(t, 30*time.Second)
	exp := time.Now().Add(time.Hour)
	for i := range 300 {
		id := fmt.Sprint("own-", i)
		if ok, err := s.CreateSession(ctx, id, []byte("v1"), "u", "", exp); !ok || err != nil {
			t.Fatalf("CreateSession = %v, %v", ok, err)
		}
		_, v1, err := s.LoadSession(ctx, id) // cached
		if err != nil || v1 == 0 {
			t.Fatalf("LoadSession = %d, %v", v1, err)
		}
		if ok, err := s.ReplaceSession(ctx, id, v1, []byte("v2"), "u", "", exp); !ok || err != nil {
			t.Fatalf("ReplaceSession = %v, %v", ok, err)
		}
		if data, v2, err := s.LoadSession(ctx, id); string(data) != "v2" || v2 == v1 || err != nil {
			t.Fatalf("round %d: the load right after this store's replace = %q at %d (was %d), %v; want v2", i, data, v2, v1, err)
		}
		if err := s.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, v, err := s.LoadSession(ctx, id); v != 0 || err != nil {
			t.Fatalf("round %d: the load right after this store's delete = version %d, %v; want none", i, v, err)
		}
	}
}
