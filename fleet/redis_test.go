package fleet_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/boj/redistore"
	"github.com/gomodule/redigo/redis"
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
	server *redisServer // nil when PIPAAUTH_REDIS_ADDR names it
	err    error        // why there is none
}

func TestMain(m *testing.M) {
	switch addr := os.Getenv(envRedisAddr); {
	case addr != "":
		shared.addr = addr
		if err := ping(addr, 5*time.Second); err != nil {
			shared.err = fmt.Errorf("%s=%s does not answer PING: %w", envRedisAddr, addr, err)
		}
	default:
		if _, err := exec.LookPath("redis-server"); err != nil {
			shared.err = errors.New(noRedisServer)
			break
		}
		s, err := startRedis(0, "")
		if err != nil {
			shared.err = err
			break
		}
		shared.server, shared.addr = s, s.addr
	}
	code := m.Run()
	if shared.server != nil {
		shared.server.stop()
	}
	os.Exit(code)
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
// freeze; it is killed when t ends.
func privateRedis(t testing.TB, dir string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		noRedis(t, errors.New(noRedisServer))
	}
	s, err := startRedis(0, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// redisServer is a redis-server process on 127.0.0.1.
type redisServer struct {
	addr string
	port int
	dir  string // its working directory: dump.rdb goes there
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{} // closed when the process has exited
}

// startRedis starts redis-server on 127.0.0.1:port, a free port when port is
// 0, without persistence; with dir, SHUTDOWN SAVE writes dir/dump.rdb, which
// the next server started on dir loads. It waits until PING answers.
func startRedis(port int, dir string) (*redisServer, error) {
	var lastErr error
	for range 5 { // a free port may be taken between the probe and the start
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := startRedisOn(p, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if port != 0 {
			break
		}
	}
	return nil, lastErr
}

func startRedisOn(port int, dir string) (*redisServer, error) {
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}
	if dir != "" {
		args = append(args, "--dir", dir, "--dbfilename", "dump.rdb")
	}
	s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, dir: dir, out: new(bytes.Buffer), done: make(chan struct{})}
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if dir != "" {
		s.cmd.Dir = dir
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server on port %d exited at start: %s", port, s.out.String())
		default:
		}
		if ping(s.addr, 200*time.Millisecond) == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server on port %d does not answer PING after 10s: %s", port, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func ping(addr string, timeout time.Duration) error {
	c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(timeout), redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Do("PING")
	return err
}

// freeze stops the process (SIGSTOP): connections are still accepted by the
// kernel, but nothing answers. thaw resumes it.
func (s *redisServer) freeze() error { return syscall.Kill(s.cmd.Process.Pid, syscall.SIGSTOP) }
func (s *redisServer) thaw() error   { return syscall.Kill(s.cmd.Process.Pid, syscall.SIGCONT) }

// shutdownSave makes the server write dir/dump.rdb and exit, and waits.
func (s *redisServer) shutdownSave() error {
	c, err := redis.Dial("tcp", s.addr, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	c.Do("SHUTDOWN", "SAVE") // the server closes the connection: no reply
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("redis-server did not exit after SHUTDOWN SAVE")
	}
}

// stop kills the process (thawing it first if frozen) and waits for it.
func (s *redisServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	<-s.done
}

// newPool is the recommended pool (see docs/redis.md): every connection
// has dial, read and write timeouts, shorter than SessionStoreTimeout, so a
// call pipaauth gave up on ends by itself soon after.
func newPool(addr string) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     16,
		IdleTimeout: 4 * time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", addr,
				redis.DialConnectTimeout(time.Second),
				redis.DialReadTimeout(time.Second),
				redis.DialWriteTimeout(time.Second))
		},
		TestOnBorrow: func(c redis.Conn, idleSince time.Time) error {
			if time.Since(idleSince) < time.Minute {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

// newStore builds a redistore on the recommended pool with prefix; keys are
// the Config's SessionKeys, which seal the cookie that carries the id.
func newStore(t testing.TB, addr, prefix string, keys [][]byte) *redistore.RediStore {
	t.Helper()
	st, err := redistore.NewRediStoreWithPool(newPool(addr), keys...)
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
