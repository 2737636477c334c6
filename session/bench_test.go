package session

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shaped returns the session of user i shaped like a real one: a 30-character
// email, a sid, auth_time claimed, and an ID token of 1.6 KB (which Save
// puts in its side cookie; a session sealed before format 5 carried it).
func shaped(i int, now time.Time) *Data {
	email := fmt.Sprintf("user%08d.name@example-mail.com", i)
	return &Data{
		User:    User{ID: fmt.Sprintf("AkN3kS9e1R0pq8dA%06d", i), Email: email[:30], EmailVerified: true, AuthTime: now},
		LoginAt: now, LastSeen: now, AuthTimeClaimed: true,
		SID:     fmt.Sprintf("5f0c1a3e-7b2d-4c8e-9a6f-%012d", i),
		IDToken: strings.Repeat("h", 70) + "." + strings.Repeat("p", 1186) + "." + strings.Repeat("s", 342),
	}
}

// BenchmarkLoadDistinct loads the sessions of n distinct browsers in turn,
// as an instance serving n active sessions does: the cost per Load must stay
// flat from 1 to 100,000 (DefaultCacheSize). It also reports the heap the
// warm cache holds per session (B/session) and the session cookie's size.
// The sessions are shaped like real ones (see shaped).
//
// With many sessions the cookie values themselves no longer fit the CPU
// caches, which a server does not suffer (it has just read the request):
// BenchmarkReadDistinct measures that part alone (it is small).
func BenchmarkLoadDistinct(b *testing.B) {
	for _, n := range []int{1, 1500, 10_000, 100_000} {
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
				if err := m.Save(rec, nil, shaped(i, c.t)); err != nil {
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
			if n >= 1000 { // below, the heap's noise drowns the figure
				b.ReportMetric(perSession, "B/session")
			}
			b.ReportMetric(float64(len(values[0])), "cookie-bytes")
		})
	}
}

// BenchmarkLoadRecord is a Load through a RevocableStore that answers at
// once (as redisstore does from its client-side cache): the cookie is
// opened once, the session decoded once per version, and no timer or
// goroutine is started.
func BenchmarkLoadRecord(b *testing.B) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newMemRecords()
	m, err := NewManager(Options{
		Name: "__Host-bench", Secure: true, KeyPairs: keys(1),
		Lifetime: 12 * time.Hour, AttemptTTL: 10 * time.Minute, Now: c.now,
		Store: s, StoreTimeout: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := m.Save(rec, nil, loggedIn(c.t)); err != nil {
		b.Fatal(err)
	}
	r := withCookies(rec.Result().Cookies())
	for b.Loop() {
		if _, err := m.Load(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadDistinct reads a byte of every 64 of cookie values like
// BenchmarkLoadDistinct's, in the same order, and does nothing else: the
// cost of the values' own cache misses, in the benchmark and not in a
// server.
func BenchmarkReadDistinct(b *testing.B) {
	for _, n := range []int{1, 10_000, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			values := make([]string, n)
			for i := range values {
				// About the length of BenchmarkLoadDistinct's cookies (185 bytes), each its own allocation.
				values[i] = "__Host-bench=" + strconv.Itoa(i) + strings.Repeat("x", 172-len(strconv.Itoa(i)))
			}
			var sum byte
			for i := 0; b.Loop(); i++ {
				v := values[i%n]
				for j := 0; j < len(v); j += 64 {
					sum += v[j]
				}
			}
			_ = sum
		})
	}
}
