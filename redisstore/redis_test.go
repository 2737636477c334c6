package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth/redisstore"
	"github.com/pipaauth/pipaauth/redisstore/internal/redistest"
)

// startRedis starts a private redis-server for t, or skips t when there is
// none, unless PIPAAUTH_REQUIRE_REDIS=1, when it fails.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Require(t)
}

// newClient returns a rueidis client of addr, as docs/redis.md recommends
// (ConnWriteTimeout bounds a silent connection), closed when t ends.
func newClient(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      []string{addr},
		ConnWriteTimeout: time.Second,
		RetryDelay:       redisstore.QuickRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newStore(t *testing.T, c rueidis.Client, opt redisstore.Options) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw is a plain connection to inspect what the store wrote.
type raw struct {
	t *testing.T
	c rueidis.Client
}

func newRaw(t *testing.T, addr string) raw {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return raw{t, c}
}

func (r raw) do(args ...string) rueidis.RedisResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.c.Do(ctx, r.c.B().Arbitrary(args...).Build())
}

func (r raw) int(args ...string) int64 {
	r.t.Helper()
	n, err := r.do(args...).AsInt64()
	if err != nil {
		r.t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return n
}

// commands returns how many times Redis ran cmd (lower case), from INFO
// commandstats.
func (r raw) commands(cmd string) int64 {
	r.t.Helper()
	info, err := r.do("INFO", "commandstats").ToString()
	if err != nil {
		r.t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		var n int64
		for _, ch := range rest {
			if ch < '0' || ch > '9' {
				break
			}
			n = n*10 + int64(ch-'0')
		}
		return n
	}
	return 0
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
