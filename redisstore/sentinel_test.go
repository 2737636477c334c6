package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth/redisstore"
	"github.com/pipaauth/pipaauth/redisstore/internal/redistest"
)

// Through rueidis's Sentinel options: sessions written, the master killed
// with SIGKILL, the replica promoted by the sentinel, the sessions read
// again (and a new one written) within 10 s, through the same client.
func TestSentinelFailover(t *testing.T) {
	s := redistest.RequireSentinel(t)
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      []string{s.Sentinel.Addr},
		Sentinel:         rueidis.SentinelOption{MasterSet: s.MasterSet},
		ConnWriteTimeout: time.Second,
		RetryDelay:       redisstore.QuickRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	if client.Mode() != rueidis.ClientModeSentinel {
		t.Fatalf("client mode %v, want sentinel", client.Mode())
	}
	store := newStore(t, client, redisstore.Options{})
	ctx := ctxT(t, time.Minute)
	exp := time.Now().Add(time.Hour)
	var ids []string
	for i := range 20 {
		sub := fmt.Sprintf("user-%d", i)
		id, _ := store.NewSessionID(sub)
		if ok, err := store.CreateListedSession(ctx, id, []byte("d"), sub, "sid", exp, time.Now(), "UA"); !ok || err != nil {
			t.Fatalf("create: %v %v", ok, err)
		}
		ids = append(ids, id)
	}
	// Let the writes reach the replica.
	time.Sleep(200 * time.Millisecond)
	for _, id := range ids {
		if _, v, err := store.LoadSession(ctx, id); v == 0 || err != nil {
			t.Fatalf("load before the failover: %d %v", v, err)
		}
	}
	killed := time.Now()
	s.Master.Kill()
	for {
		ok := true
		for _, id := range ids {
			if _, v, err := store.LoadSession(ctx, id); v == 0 || err != nil {
				ok = false
				break
			}
		}
		if ok && s.MasterAddr() == s.Replica.Addr {
			// Written to the promoted replica, too.
			id, _ := store.NewSessionID("new")
			if created, err := store.CreateListedSession(ctx, id, []byte("d"), "new", "", exp, time.Now(), "UA"); created && err == nil {
				break
			}
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("sessions not served, or no write accepted, 10s after the master was killed (the sentinel reports the master at %s)", s.MasterAddr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("served and writable again %s after the master's SIGKILL", time.Since(killed).Round(10*time.Millisecond))
	if n, err := store.RevokeSID(ctx, "sid"); err != nil || n != len(ids) {
		t.Errorf("RevokeSID after the failover: %d %v, want %d", n, err, len(ids))
	}
}
