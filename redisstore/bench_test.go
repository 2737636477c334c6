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
