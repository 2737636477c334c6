package fleet_test

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boj/redistore"
	"github.com/gomodule/redigo/redis"

	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
)

const (
	envRedisAddr    = "PIPAAUTH_REDIS_ADDR"
	envRequireRedis = "PIPAAUTH_REQUIRE_REDIS"
	noRedisServer   = "redis-server not found: install it with `apt-get install redis-server` to run the Redis tests"
)

// shared is the Redis that tests which do not break it use: PIPAAUTH_REDIS_ADDR,
// or a redis-server this test binary started in TestMain. Tests keep apart by
// key prefix.
var shared struct {
	addr   string
	server *redisproc.Server // nil when PIPAAUTH_REDIS_ADDR names it
	err    error             // why there is none
}

func TestMain(m *testing.M) {
	switch addr := os.Getenv(envRedisAddr); {
	case addr != "":
		shared.addr = addr
		if err := redisproc.Ping(addr, 5*time.Second); err != nil {
			shared.err = fmt.Errorf("%s=%s does not answer PING: %w", envRedisAddr, addr, err)
		}
	default:
		s, err := redisproc.Start(redisproc.Options{})
		if err != nil {
			shared.err = whyNoRedis(err)
			break
		}
		shared.server, shared.addr = s, s.Addr
	}
	code := m.Run()
	if shared.server != nil {
		shared.server.Stop()
	}
	os.Exit(code)
}

// whyNoRedis is err, from redisproc.Start, as the tests report it.
func whyNoRedis(err error) error {
	if errors.Is(err, redisproc.ErrNotFound) {
		return errors.New(noRedisServer)
	}
	return err
}

// noRedis skips the test with why, or fails it under PIPAAUTH_REQUIRE_REDIS=1.
func noRedis(t testing.TB, why error) {
	t.Helper()
	if os.Getenv(envRequireRedis) == "1" {
		t.Fatalf("%v (%s=1: the Redis tests must run)", why, envRequireRedis)
	}
	t.Skip(why)
}

// sharedRedis returns the address of the shared Redis, and a key prefix of
// the test's own, whose keys are deleted when t ends.
func sharedRedis(t testing.TB) (addr, prefix string) {
	t.Helper()
	if shared.err != nil {
		noRedis(t, shared.err)
	}
	addr, prefix = shared.addr, newPrefix()
	t.Cleanup(func() {
		c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(5*time.Second))
		if err != nil {
			return
		}
		defer c.Close()
		if ks, err := redis.Values(c.Do("KEYS", prefix+"*")); err == nil && len(ks) > 0 {
			c.Do("DEL", ks...)
		}
	})
	return addr, prefix
}

var prefixes atomic.Int64

// newPrefix returns a Redis key prefix no other test of this process uses,
// ending in session_ like redistore's default.
func newPrefix() string {
	return fmt.Sprintf("pipaauth-fleet-%d-%d:session_", os.Getpid(), prefixes.Add(1))
}

// privateRedis starts a redis-server for t alone, which t may stop, kill or
// freeze; with dir, ShutdownSave writes dir/dump.rdb, which the next server
// started on dir loads. It is killed when t ends.
func privateRedis(t testing.TB, dir string) *redisproc.Server {
	t.Helper()
	s, err := redisproc.Start(redisproc.Options{Dir: dir})
	if errors.Is(err, redisproc.ErrNotFound) {
		noRedis(t, whyNoRedis(err))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// newStore builds a redistore on the recommended pool with prefix; keys are
// the Config's SessionKeys, which seal the cookie that carries the id.
func newStore(t testing.TB, addr, prefix string, keys [][]byte) *redistore.RediStore {
	t.Helper()
	st, err := redistore.NewRediStoreWithPool(redisproc.NewPool(addr, 16), keys...)
	if err != nil {
		t.Fatalf("redistore: %v", err)
	}
	st.SetKeyPrefix(prefix)
	t.Cleanup(func() { st.Close() })
	return st
}

// conn opens a redigo connection for the test's own checks.
func conn(t testing.TB, addr string) redis.Conn {
	t.Helper()
	c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(2*time.Second), redis.DialReadTimeout(5*time.Second), redis.DialWriteTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting to Redis at %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// keys lists the keys under prefix.
func keys(t testing.TB, addr, prefix string) []string {
	t.Helper()
	c := conn(t, addr)
	ks, err := redis.Strings(c.Do("KEYS", prefix+"*"))
	if err != nil {
		t.Fatalf("KEYS %s*: %v", prefix, err)
	}
	return ks
}

// exists reports whether key is in Redis.
func exists(t testing.TB, addr, key string) bool {
	t.Helper()
	n, err := redis.Int(conn(t, addr).Do("EXISTS", key))
	if err != nil {
		t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}
