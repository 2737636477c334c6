package session

import (
	"strings"
	"sync"
)

// cache remembers cookie values that already passed securecookie's MAC check
// and decryption, so a returning request skips both. It is a pure memo of
// decode(value): it never extends a session, because Load checks the
// timestamps inside the data on every hit. It holds at most size entries and
// evicts an arbitrary one when full. A nil *cache caches nothing.
type cache struct {
	mu   sync.RWMutex
	size int
	m    map[string]*Data
}

func newCache(size int) *cache {
	return &cache{size: size, m: make(map[string]*Data, size)}
}

func (c *cache) get(value string) (*Data, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	d, ok := c.m[value]
	c.mu.RUnlock()
	return d, ok
}

func (c *cache) add(value string, d *Data) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[value]; ok {
		return
	}
	if len(c.m) >= c.size {
		for k := range c.m { // map iteration starts at a random entry
			delete(c.m, k)
			break
		}
	}
	// The value may be a slice of a large request header; keep only its bytes.
	c.m[strings.Clone(value)] = d
}
