package session

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestCacheBounded(t *testing.T) {
	for _, size := range []int{1, 3, 100, 1000} {
		c := newCache[int](size)
		for i := range 10 * size {
			c.set("value-"+strconv.Itoa(i), i)
		}
		// Each shard rounds its share up, so the bound is size plus at most
		// one entry per shard.
		if n := c.len(); n > size+cacheShards || n == 0 {
			t.Errorf("size %d: cache holds %d entries after %d sets, want 1 to %d", size, n, 10*size, size+cacheShards)
		}
	}
	var nilCache *cache[int]
	nilCache.set("v", 1)
	if _, ok := nilCache.get("v"); ok {
		t.Error("a nil cache returned an entry")
	}
	if newCache[int](0) != nil || newCache[int](-1) != nil {
		t.Error("newCache of a non-positive size is not nil")
	}
}

func TestCacheGetSet(t *testing.T) {
	c := newCache[string](100)
	c.set("a", "A")
	c.set("b", "B")
	c.set("a", "A2") // replaces
	for _, tt := range []struct {
		key, want string
		ok        bool
	}{
		{"a", "A2", true},
		{"b", "B", true},
		{"c", "", false},
		{"A", "", false},
		{"a ", "", false},
	} {
		if got, ok := c.get(tt.key); got != tt.want || ok != tt.ok {
			t.Errorf("get(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

// A scan of values read once must not push out the values in use: what
// S3-FIFO gives and a FIFO, an LRU or random eviction do not.
func TestCacheScanResistant(t *testing.T) {
	const size = 1600
	c := newCache[int](size)
	hot := make([]string, size/2)
	for i := range hot {
		hot[i] = fmt.Sprintf("hot-%d", i)
		c.set(hot[i], i)
	}
	for round := range 20 {
		for i, k := range hot {
			if _, ok := c.get(k); !ok {
				c.set(k, i)
			}
		}
		for i := range size { // a scan as large as the cache, every round
			c.set(fmt.Sprintf("scan-%d-%d", round, i), -1)
		}
	}
	kept := 0
	for _, k := range hot {
		if _, ok := c.get(k); ok {
			kept++
		}
	}
	if kept < len(hot)*9/10 {
		t.Errorf("after 20 scans, %d of %d values in use are cached, want at least 90%%", kept, len(hot))
	}
}

// A value is served only its own entry: a value that shares another's
// kept part (where securecookie's MAC sits) or its hashed part, or that
// differs from it in any one byte, never gets the other's session.
func TestCacheExact(t *testing.T) {
	c := newCache[string](100)
	mac := strings.Repeat("M", keptLen) // the kept part of a long value
	alice := "alice-value-" + strings.Repeat("a", 300) + mac
	c.set(alice, "alice")
	hashedAlice, _ := split(alice)
	others := []string{
		"mallory-value-" + strings.Repeat("a", 298) + mac, // a copied kept part
		hashedAlice + strings.Repeat("N", keptLen),        // a copied hashed part
		mac, alice[1:], alice[:len(alice)-1], alice + "A", "A" + alice,
	}
	for i := range alice { // every single-byte change
		b := []byte(alice)
		b[i] ^= 1
		others = append(others, string(b))
	}
	for _, v := range others {
		if got, ok := c.get(v); ok {
			t.Fatalf("get(%q) = %q, want no entry: another value", v, got)
		}
	}
	if got, ok := c.get(strings.Clone(alice)); !ok || got != "alice" {
		t.Errorf("get(alice's value) = %q, %v; want alice", got, ok)
	}
	// Both cached: each value gets its own, never the other's.
	mallory := others[0]
	c.set(mallory, "mallory")
	for v, want := range map[string]string{alice: "alice", mallory: "mallory"} {
		if got, ok := c.get(v); ok && got != want {
			t.Errorf("get(%q) = %q, want %q or no entry", v, got, want)
		}
	}
	// Were another value's hashed part to collide with alice's under the
	// seed, its kept part would still differ: not served.
	_, keptAlice := split(alice)
	if got, ok := c.lookup(strings.Repeat("N", keptLen), c.check(hashedAlice, keptAlice)); ok {
		t.Errorf("a value colliding with alice's check got %q, want no entry", got)
	}
}

// split keeps at most keptLen characters and at most half the value, so
// short values (store ids) are hashed too, and the kept part of a
// securecookie value holds its whole MAC.
func TestCacheSplit(t *testing.T) {
	for _, n := range []int{0, 1, 2, 43, 86, 100, 319, 320, 321, 2000} {
		v := strings.Repeat("v", n)
		hashed, kept := split(v)
		if hashed+kept != v || len(kept) > keptLen || len(kept) > len(hashed) {
			t.Errorf("split(%d characters) = %d + %d", n, len(hashed), len(kept))
		}
		if n >= 2*keptLen && len(kept) != keptLen {
			t.Errorf("split(%d characters) keeps %d, want %d", n, len(kept), keptLen)
		}
	}
	if keptLen < 43 {
		t.Errorf("keptLen %d does not hold a securecookie MAC (43 characters)", keptLen)
	}
}
