package session

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkLoadDistinct loads the sessions of n distinct browsers in turn,
// as an instance serving n active sessions does: the cost per Load must stay
// flat from 1 to 100,000 (DefaultCacheSize). It also reports the heap the
// warm cache holds per session (B/session).
func BenchmarkLoadDistinct(b *testing.B) {
	for _, n := range []int{1, 10_000, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			c := &clock{time.Unix(1_800_000_000, 0)}
			m, err := NewManager(Options{
				Name: "__Host-bench", Secure: true, KeyPairs: keys(1),
				Lifetime: 12 * time.Hour, AttemptTTL: 10 * time.Minute, Now: c.now,
				CacheSize: -1, // filled below, after the heap is measured
			})
			if err != nil {
				b.Fatal(err)
			}
			values := make([]string, n)
			for i := range values {
				rec := httptest.NewRecorder()
				d := &Data{User: User{ID: "user-" + strconv.Itoa(i), Email: "user" + strconv.Itoa(i) + "@example.com", EmailVerified: true}, LoginAt: c.t, LastSeen: c.t}
				if err := m.Save(rec, nil, d); err != nil {
					b.Fatal(err)
				}
				values[i] = rec.Result().Cookies()[0].Value
			}
			// One request whose cookie changes, as the request of a server
			// is hot in the CPU cache whoever sent it; only the sessions
			// differ.
			r := httptest.NewRequest("GET", "/", nil)
			cookie := []string{""}
			r.Header["Cookie"] = cookie
			for i := range values {
				values[i] = "__Host-bench=" + values[i]
			}
			load := func(v string) {
				cookie[0] = v
				if _, err := m.Load(r); err != nil {
					b.Fatal(err)
				}
			}
			cb := m.backend.(*cookieBackend)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			cb.cache = newCache[*Data](DefaultCacheSize)
			for _, v := range values {
				load(v)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perSession := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
			for i := 0; b.Loop(); i++ {
				load(values[i%n])
			}
			b.ReportMetric(perSession, "B/session")
		})
	}
}
