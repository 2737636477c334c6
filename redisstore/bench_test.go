package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth/redisstore"
	"github.com/pipaauth/pipaauth/redisstore/internal/redistest"
)

// BenchmarkLoadSessionCached is a load served by the client-side cache, as
// every guarded request of an active session is, from all CPUs at once.
func BenchmarkLoadSessionCached(b *testing.B) {
	srv := redistest.Require(b)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	s, err := redisstore.New(c, redisstore.Options{CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if ok, err := s.CreateSession(ctx, "bench", []byte("a session of a few hundred bytes"), "sub", "", time.Now().Add(time.Hour)); !ok || err != nil {
		b.Fatal(ok, err)
	}
	time.Sleep(150 * time.Millisecond) // past the store's own-write window
	if _, v, err := s.LoadSession(ctx, "bench"); v == 0 || err != nil {
		b.Fatal(v, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, v, err := s.LoadSession(ctx, "bench"); v == 0 || err != nil {
				b.Fatal(v, err)
			}
		}
	})
}

// BenchmarkListSessions lists a user with 5 sessions (one Lua script in the
// user's slot and one for the previous key layout, in one round trip);
// BenchmarkLoadSessionUncached, one uncached load, is the baseline of the
// same run: docs/redis.md quotes the ratio.
func BenchmarkListSessions(b *testing.B) {
	for _, bc := range []struct {
		name   string
		legacy bool
	}{{"with-legacy-layout", true}, {"NoLegacyKeys", false}} {
		b.Run(bc.name, func(b *testing.B) {
			s, ctx := benchStore(b, redisstore.Options{NoLegacyKeys: !bc.legacy, CacheTTL: -1})
			for range 5 {
				id, _ := s.NewSessionID("alice")
				if ok, err := s.CreateListedSession(ctx, id, make([]byte, 500), "alice", "", time.Now().Add(time.Hour), time.Now(), "Mozilla/5.0 (X11; Linux x86_64)"); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if list, err := s.ListSessions(ctx, "alice"); len(list) != 5 || err != nil {
					b.Fatal(len(list), err)
				}
			}
		})
	}
}

func BenchmarkLoadSessionUncached(b *testing.B) {
	s, ctx := benchStore(b, redisstore.Options{CacheTTL: -1})
	id, _ := s.NewSessionID("alice")
	if ok, err := s.CreateListedSession(ctx, id, make([]byte, 500), "alice", "", time.Now().Add(time.Hour), time.Now(), "UA"); !ok || err != nil {
		b.Fatal(ok, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, v, err := s.LoadSession(ctx, id); v == 0 || err != nil {
			b.Fatal(v, err)
		}
	}
}

func benchStore(b *testing.B, opt redisstore.Options) (*redisstore.Store, context.Context) {
	b.Helper()
	srv := redistest.Require(b)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	s, err := redisstore.New(c, opt)
	if err != nil {
		b.Fatal(err)
	}
	return s, context.Background()
}
