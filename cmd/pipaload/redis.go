package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"time"

	"github.com/boj/redistore"
	"github.com/gomodule/redigo/redis"
)

// redisServer is a private redis-server on 127.0.0.1, without persistence,
// for -store redis.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{} // closed when the process has exited
}

// startRedis starts redis-server on a free loopback port and waits until it
// answers PING.
func startRedis() (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server not found: install it with `apt-get install redis-server` for -store redis")
	}
	var last error
	for range 5 { // the free port may be taken before redis-server binds it
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		s := &redisServer{addr: net.JoinHostPort("127.0.0.1", port), out: new(bytes.Buffer), done: make(chan struct{})}
		s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting redis-server: %w", err)
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		if last = s.waitReady(10 * time.Second); last == nil {
			return s, nil
		}
		s.stop()
	}
	return nil, last
}

func (s *redisServer) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited at start: %s", s.out)
		default:
		}
		c, err := redis.Dial("tcp", s.addr, redis.DialConnectTimeout(200*time.Millisecond), redis.DialReadTimeout(200*time.Millisecond))
		if err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server does not answer PING: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server and waits for it.
func (s *redisServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
}

// newRedisStore is the store docs/redis.md recommends: a redigo pool whose
// connections have dial, read and write timeouts.
func newRedisStore(addr string, keys [][]byte) (*redistore.RediStore, error) {
	pool := &redis.Pool{
		MaxIdle:     64,
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
	store, err := redistore.NewRediStoreWithPool(pool, keys...)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("redistore: %w", err)
	}
	store.SetKeyPrefix("pipaload:session_")
	return store, nil
}
