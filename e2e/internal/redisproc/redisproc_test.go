package redisproc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// mustStart starts a server for t, or skips t when redis-server is missing,
// unless PIPAAUTH_REQUIRE_REDIS=1, when it fails.
func mustStart(t *testing.T, opt Options) *Server {
	t.Helper()
	s, err := Start(opt)
	if errors.Is(err, ErrNotFound) {
		if os.Getenv("PIPAAUTH_REQUIRE_REDIS") == "1" {
			t.Fatalf("%v (PIPAAUTH_REQUIRE_REDIS=1)", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func TestStartFreezeThawStop(t *testing.T) {
	s := mustStart(t, Options{})
	if err := Ping(s.Addr, time.Second); err != nil {
		t.Fatalf("PING %s after Start: %v", s.Addr, err)
	}

	if err := s.Freeze(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err := Ping(s.Addr, 200*time.Millisecond)
	if took := time.Since(begin); err == nil || took > 2*time.Second {
		t.Errorf("PING a frozen server: %v after %s, want a timeout after about 200ms", err, took.Round(time.Millisecond))
	}
	if err := s.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := Ping(s.Addr, time.Second); err != nil {
		t.Errorf("PING after Thaw: %v", err)
	}

	s.Freeze() // Stop must kill a frozen server too
	s.Stop()
	select {
	case <-s.Done():
	default:
		t.Fatal("Stop returned with the process still running")
	}
	s.Stop() // again: nothing to do
	if err := Ping(s.Addr, 200*time.Millisecond); err == nil {
		t.Error("PING answered after Stop")
	}
}

// A server started on a Dir saves with ShutdownSave, and the next one
// started on the same port and Dir has the data.
func TestShutdownSaveAndRestart(t *testing.T) {
	s := mustStart(t, Options{Dir: t.TempDir()})
	c, err := Dial(s.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do("SET", "k", "v")
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ShutdownSave(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "dump.rdb")); err != nil {
		t.Errorf("no snapshot after ShutdownSave: %v", err)
	}

	back := mustStart(t, Options{Port: s.Port, Dir: s.Dir})
	if back.Addr != s.Addr {
		t.Errorf("restarted on %s, want %s", back.Addr, s.Addr)
	}
	pool := NewPool(back.Addr, 1)
	defer pool.Close()
	pc := pool.Get()
	defer pc.Close()
	if v, err := redis.String(pc.Do("GET", "k")); err != nil || v != "v" {
		t.Errorf("GET k after the restart: %q, %v; want \"v\"", v, err)
	}
}

func TestNotFound(t *testing.T) {
	if _, err := Start(Options{Bin: "pipaauth-no-such-redis-server"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Start with a missing binary: %v, want ErrNotFound", err)
	}
}
