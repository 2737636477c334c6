package session

import (
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Loads of a session while its own write-backs replace the cache entry in
// place: run under -race, the cache's read of the entry's value must hold
// the shard lock (found by the security review).
func TestCacheLoadWhileWriteBack(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, nil)
	r := roundTrip(t, m, loggedIn(c.t))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if d, err := m.Load(r); err != nil || d.User.ID != "sub-1" {
					t.Errorf("Load: %+v, %v", d, err)
					return
				}
			}
		}()
	}
	for i := range 200 {
		d, err := m.Load(r)
		if err != nil {
			t.Fatal(err)
		}
		next := d.Clone()
		next.LastSeen = d.LastSeen.Add(time.Duration(i+1) * time.Millisecond)
		if err := m.Save(httptest.NewRecorder(), r, next); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
}
