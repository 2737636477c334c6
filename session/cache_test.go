package session

import (
	"fmt"
	"strconv"
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

func TestDigestDistinct(t *testing.T) {
	if digestOf("a") == digestOf("b") || digestOf("") == digestOf("\x00") {
		t.Error("different values share a digest")
	}
	if digestOf("same") != digestOf(string([]byte("same"))) {
		t.Error("one value has two digests")
	}
}
