package session

import (
	"fmt"
	"hash/maphash"
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

// Values filed under one digest (the same tail) are told apart by the
// check: a value made of other bytes and a copied tail never gets the
// cached session of the value it copied.
func TestCacheSameTail(t *testing.T) {
	c := newCache[string](100)
	tail := strings.Repeat("M", digestLen) // where securecookie's MAC sits
	c.set("alice-value-"+tail, "alice")
	for _, v := range []string{"mallory-value-" + tail, tail, "X" + tail[1:], "alice-value-" + tail + "A"} {
		if got, ok := c.get(v); ok {
			t.Errorf("get(%q) = %q, want no entry: another value", v, got)
		}
	}
	if got, ok := c.get("alice-value-" + tail); !ok || got != "alice" {
		t.Errorf("get(alice's value) = %q, %v; want alice", got, ok)
	}
	// Both cached: each value gets its own, never the other's.
	c.set("mallory-value-"+tail, "mallory")
	for v, want := range map[string]string{"alice-value-" + tail: "alice", "mallory-value-" + tail: "mallory"} {
		if got, ok := c.get(v); ok && got != want {
			t.Errorf("get(%q) = %q, want %q or no entry", v, got, want)
		}
	}
	// Were another value to collide with alice's under the seed, its tail
	// (securecookie's MAC) would still differ: not served.
	alice := "alice-value-" + tail
	if got, ok := c.lookup("other-value-"+strings.Repeat("N", digestLen), maphash.String(c.seed, alice)); ok {
		t.Errorf("a value colliding with alice's check got %q, want no entry", got)
	}
	if digestOf("same") != digestOf(string([]byte("same"))) {
		t.Error("one value has two digests")
	}
}
