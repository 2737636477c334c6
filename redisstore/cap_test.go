package redisstore_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/redisstore"
)

// One user cannot fill Redis: beyond MaxSessionsPerUser, a login ends that
// user's oldest sessions (those that expire first); other users keep theirs.
func TestMaxSessionsPerUser(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	ctx := ctxT(t, 10*time.Second)
	tests := []struct {
		name string
		max  int
		want int // sessions alice keeps after 120 logins
	}{
		{"default", 0, redisstore.DefaultMaxSessionsPerUser},
		{"three", 3, 3},
		{"no cap", -1, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "cap-" + strings.ReplaceAll(tt.name, " ", "-") + ":"
			s := newStore(t, newClient(t, srv.Addr), redisstore.Options{KeyPrefix: prefix, MaxSessionsPerUser: tt.max})
			base := time.Now().Add(time.Hour)
			if ok, err := s.CreateSession(ctx, "bob", []byte("b"), "bob", "", base); !ok || err != nil {
				t.Fatal(ok, err)
			}
			for i := range 120 {
				id := fmt.Sprintf("a%03d", i)
				if ok, err := s.CreateSession(ctx, id, []byte(id), "alice", "op-"+id, base.Add(time.Duration(i)*time.Second)); !ok || err != nil {
					t.Fatal(id, ok, err)
				}
			}
			if n := r.int("ZCARD", prefix+"sub:alice"); n != int64(tt.want) {
				t.Errorf("alice's index holds %d sessions, want %d", n, tt.want)
			}
			for i := range 120 {
				id := fmt.Sprintf("a%03d", i)
				_, v, err := s.LoadSession(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if live, want := v != 0, i >= 120-tt.want; live != want {
					t.Errorf("session %s live %v, want %v (the newest %d stay)", id, live, want, tt.want)
				}
				if !(i >= 120-tt.want) && r.int("EXISTS", prefix+"sid:op-"+id) != 0 {
					t.Errorf("the sid index of ended session %s remains", id)
				}
			}
			if _, v, _ := s.LoadSession(ctx, "bob"); v == 0 {
				t.Error("bob's session was ended by alice's logins")
			}
		})
	}
}

// RevokeSubject of a user with 100,000 sessions ends them all in batches
// (at least one script per 1,000 sessions), so that no single script holds
// Redis for the whole revocation. Timings are not asserted: a loaded
// machine makes them meaningless (one script for all 100,000 timed out).
func TestRevokeSubjectBatched(t *testing.T) {
	if testing.Short() {
		t.Skip("fills Redis with 100,000 sessions")
	}
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{MaxSessionsPerUser: -1})
	ctx := ctxT(t, 60*time.Second)
	const n = 100_000
	exp := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	// Fill Redis as 100,000 CreateSession calls would, in one script.
	fill := `for i = tonumber(ARGV[3]), tonumber(ARGV[1]) do
  local id = 'x' .. i
  redis.call('HSET', 'pipaauth:s:' .. id, 'v', 1, 'd', 'data', 'u', 'alice', 's', '')
  redis.call('PEXPIREAT', 'pipaauth:s:' .. id, ARGV[2])
  redis.call('ZADD', 'pipaauth:sub:alice', ARGV[2], id)
end
return 1`
	for from := 1; from <= n; from += 10_000 { // in chunks: each well within raw's 5 s
		if err := r.do("EVAL", fill, "0", strconv.Itoa(from+10_000-1), exp, strconv.Itoa(from)).Error(); err != nil {
			t.Fatal(err)
		}
	}
	before := r.commands("evalsha")
	got, err := s.RevokeSubject(ctx, "alice")
	if err != nil || got != n {
		t.Fatalf("RevokeSubject = %d, %v; want %d", got, err, n)
	}
	if k := r.int("DBSIZE"); k != 0 {
		t.Errorf("%d keys left after the revocation, want 0", k)
	}
	if calls := r.commands("evalsha") - before; calls < n/1000 {
		t.Errorf("the revocation ran %d scripts, want batches of at most 1000 sessions (>= %d)", calls, n/1000)
	}
}
