package memstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/memstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestStore(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	s := memstore.New(memstore.Options{Now: c.now})
	exp := c.now().Add(time.Hour)
	if ok, err := s.CreateListedSession(ctx, "a", []byte("1"), "alice", "sid1", exp, c.now(), "UA"); !ok || err != nil {
		t.Fatalf("create: %v %v", ok, err)
	}
	if ok, _ := s.CreateSession(ctx, "a", []byte("x"), "alice", "", exp); ok {
		t.Error("a second create of the same id succeeded")
	}
	data, v, err := s.LoadSession(ctx, "a")
	if err != nil || v == 0 || string(data) != "1" {
		t.Fatalf("load: %q %d %v", data, v, err)
	}
	data[0] = 'z' // the caller's copy
	if d, _, _ := s.LoadSession(ctx, "a"); string(d) != "1" {
		t.Error("the returned slice aliases the stored one")
	}
	c.add(time.Minute)
	if ok, _ := s.ReplaceSession(ctx, "a", v+1, []byte("2"), "alice", "sid1", exp); ok {
		t.Error("replace with a wrong version succeeded")
	}
	if ok, _ := s.ReplaceSession(ctx, "a", v, []byte("2"), "alice", "sid1", exp); !ok {
		t.Error("replace with the right version failed")
	}
	list, _ := s.ListSessions(ctx, "alice")
	if len(list) != 1 || !list[0].LastSeen.Equal(c.now()) || list[0].UserAgent != "UA" {
		t.Errorf("list after a write-back: %+v", list)
	}
	// A write-back of a version read before a delete never revives it.
	_, v, _ = s.LoadSession(ctx, "a")
	s.DeleteSession(ctx, "a")
	if ok, _ := s.ReplaceSession(ctx, "a", v, []byte("3"), "alice", "sid1", exp); ok {
		t.Error("a write-back revived a deleted session")
	}
	// Revocation by sid and sub.
	s.CreateSession(ctx, "b", nil, "bob", "sid2", exp)
	s.CreateSession(ctx, "c", nil, "bob", "", exp)
	if n, _ := s.RevokeSID(ctx, "sid2"); n != 1 {
		t.Errorf("RevokeSID: %d, want 1", n)
	}
	if n, _ := s.RevokeSubject(ctx, "bob"); n != 1 {
		t.Errorf("RevokeSubject: %d, want 1", n)
	}
	// Expiry.
	s.CreateSession(ctx, "d", nil, "dan", "", c.now().Add(time.Second))
	c.add(time.Second)
	if _, v, _ := s.LoadSession(ctx, "d"); v != 0 {
		t.Error("an expired session loads")
	}
	if list, _ := s.ListSessions(ctx, "dan"); len(list) != 0 {
		t.Errorf("an expired session is listed: %+v", list)
	}
	// Remember.
	if first, _ := s.Remember(ctx, "jti", time.Second); !first {
		t.Error("first Remember")
	}
	if first, _ := s.Remember(ctx, "jti", time.Second); first {
		t.Error("second Remember within the ttl")
	}
	c.add(time.Second)
	if first, _ := s.Remember(ctx, "jti", time.Second); !first {
		t.Error("Remember after the ttl")
	}
	if _, err := s.Remember(ctx, "k", 0); err == nil {
		t.Error("Remember accepted a zero ttl")
	}
	// A done context is an error.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.LoadSession(done, "a"); err == nil {
		t.Error("a canceled load returned no error")
	}
	if _, err := s.Get(nil, "x"); err == nil {
		t.Error("the gorilla Get returned no error")
	}
}
