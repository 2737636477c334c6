package redisstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth/redisstore"
)

// CheckServer refuses an eviction policy (an evicted index or seen-token
// marker breaks revocation and replay protection) and a client that
// tracks with NOLOOP (found by the security review).
func TestCheckServer(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{})
	ctx := ctxT(t, 5*time.Second)
	if err := s.CheckServer(ctx); err != nil {
		t.Errorf("default Redis: %v", err)
	}
	for _, policy := range []string{"volatile-lru", "allkeys-lru", "volatile-ttl"} {
		if err := r.do("CONFIG", "SET", "maxmemory-policy", policy).Error(); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckServer(ctx); err == nil || !strings.Contains(err.Error(), "noeviction") {
			t.Errorf("maxmemory-policy %s: %v, want an error naming noeviction", policy, err)
		}
	}
	if err := r.do("CONFIG", "SET", "maxmemory-policy", "noeviction").Error(); err != nil {
		t.Fatal(err)
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}, ClientTrackingOptions: []string{"OPTIN", "NOLOOP"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := newStore(t, c, redisstore.Options{}).CheckServer(ctx); err == nil || !strings.Contains(err.Error(), "NOLOOP") {
		t.Errorf("a NOLOOP client: %v, want an error naming NOLOOP", err)
	}
	srv.Stop()
	if err := s.CheckServer(ctxT(t, time.Second)); err == nil {
		t.Error("Redis down: no error")
	}
}
