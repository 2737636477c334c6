package session

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultCacheSize is how many verified cookie values a Manager remembers
// when Options.CacheSize is 0: enough for 100,000 active sessions per
// instance at a flat cost per request.
//
// Memory: in cookie mode an entry holds the session's identity only (the
// ID token and tokens live in side cookies, never decoded by the guard):
// about 330 bytes of bookkeeping and fixed fields, the kept part of the
// cookie value (at most keptLen, 160 bytes), and the user id, email, sid
// and kept claims. BenchmarkLoadDistinct measures 572 bytes per session
// with 30-character emails and a sid, so the default cache holds at most
// about 131,072 x 572 B = 75 MB (72 MiB) of such sessions; with a
// server-side store an entry also holds the decoded record (ID token and
// kept tokens included), a few kilobytes each.
const DefaultCacheSize = 1 << 17

// cacheShards spreads the cache over independently locked parts, so that
// concurrent requests rarely wait for each other.
const cacheShards = 16

// A cookie value is filed in the cache in two parts. Its last keptLen
// characters (at most half of it) are kept in the entry, a copy, and
// compared byte for byte; the rest is filed under check, a 64-bit maphash
// under a random per-cache seed, and never kept. A lookup thus hashes
// about half of a session cookie instead of all of it, and compares the
// other half at memory speed: a cached Load took 64 ns instead of 78 here
// (BenchmarkLoadDistinct, one session, a 333-character cookie). 160 is
// about half of a session cookie with a 30-character email and a sid, and
// what the memory allows: an entry keeps 160 bytes where it kept a
// 24-character digest, about 570 bytes per cached session in all.
//
// Another value is served a cached session only if its kept part is the
// same, byte for byte, and its hashed part collides with the session's
// under a seed nobody outside the process knows (2^-64). Every value this
// package caches was sealed by securecookie, whose base64 form ends with
// the HMAC-SHA256 of the rest (its last 43 characters, before any
// padding), which the kept part holds whole: one browser's session is
// never served for another browser's value, nor for a value changed in any
// byte, and a made-up value never gets one.
const keptLen = 160

// split cuts a value into the part a lookup hashes and the part an entry
// keeps.
func split(value string) (hashed, kept string) {
	k := min(keptLen, len(value)/2)
	return value[:len(value)-k], value[len(value)-k:]
}

// check files a value: the maphash of its hashed part, mixed with its last
// eight characters (part of securecookie's MAC) so that values with one
// hashed part (short ones, in tests) still spread over the shards and
// the map.
func (c *cache[V]) check(hashed, kept string) uint64 {
	var last uint64
	for i := max(0, len(kept)-8); i < len(kept); i++ {
		last = last<<8 | uint64(kept[i])
	}
	return maphash.String(c.seed, hashed) ^ last
}

// cache remembers what a verified cookie value decoded to, so a returning
// request skips securecookie's MAC check, decryption and decoding. It is a
// pure memo of decode(value): it never extends a session, because the
// Manager checks the timestamps inside the data on every hit.
//
// It holds at most size entries and evicts with S3-FIFO (Yang et al.,
// SOSP 2023): new values enter a small FIFO queue holding a tenth of the
// entries; a value read again before it reaches the queue's head moves to
// the main queue, and the others leave, so a scan of one-time values (a
// crawler, an attack with forged cookies that happen to verify, a burst of
// new logins) cannot push out the sessions in use. A read costs a shared
// lock and an atomic increment, never a write lock. A nil *cache caches
// nothing.
type cache[V any] struct {
	seed   maphash.Seed // for cacheEntry.check
	shards [cacheShards]cacheShard[V]
}

type cacheShard[V any] struct {
	mu       sync.RWMutex
	m        map[uint64]*cacheEntry[V] // by check
	small    fifo[*cacheEntry[V]]
	main     fifo[*cacheEntry[V]]
	ghost    fifo[uint64]        // checks recently evicted from small, without values
	ghostSet map[uint64]struct{} // the same checks, for lookup
	capSmall int
	capMain  int
}

type cacheEntry[V any] struct {
	key   uint64 // check: maphash of the value's hashed part (see split)
	kept  string // the value's kept part, a copy
	value V
	freq  atomic.Int32 // reads since it entered its queue (or its last pass through main), capped at 3
}

// newCache returns a cache of size entries, or nil (no cache) when size is
// not positive.
func newCache[V any](size int) *cache[V] {
	if size <= 0 {
		return nil
	}
	c := &cache[V]{seed: maphash.MakeSeed()}
	per := max(1, (size+cacheShards-1)/cacheShards)
	for i := range c.shards {
		s := &c.shards[i]
		s.capSmall = max(1, per/10)
		s.capMain = per - s.capSmall
		s.m = make(map[uint64]*cacheEntry[V])
		s.ghostSet = make(map[uint64]struct{})
	}
	return c
}

// shard is chosen by the check.
func (c *cache[V]) shard(check uint64) *cacheShard[V] { return &c.shards[check%cacheShards] }

// get returns the value remembered for the cookie value.
func (c *cache[V]) get(value string) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	hashed, kept := split(value)
	return c.lookup(kept, c.check(hashed, kept))
}

// lookup is get with the value split and its check computed.
func (c *cache[V]) lookup(kept string, check uint64) (V, bool) {
	var zero V
	s := c.shard(check)
	s.mu.RLock()
	e := s.m[check]
	var v V
	ok := e != nil && e.kept == kept
	if ok {
		v = e.value // read under the lock: set replaces it in place
	}
	s.mu.RUnlock()
	if !ok {
		return zero, false
	}
	if e.freq.Load() < 3 {
		e.freq.Add(1)
	}
	return v, true
}

// set remembers v for the cookie value, replacing what was there.
func (c *cache[V]) set(value string, v V) {
	if c == nil {
		return
	}
	hashed, kept := split(value)
	kept = strings.Clone(kept) // value may be a slice of a large request header
	check := c.check(hashed, kept)
	s := c.shard(check)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[check]; e != nil {
		// The same value, or another with the same check (see split):
		// the newer one wins, and the other is decoded again when it
		// returns.
		e.kept, e.value = kept, v
		return
	}
	e := &cacheEntry[V]{key: check, kept: kept, value: v}
	s.m[check] = e
	if _, seen := s.ghostSet[check]; seen {
		// Evicted from the small queue recently and back already: it is
		// in use, give it a place in the main queue.
		delete(s.ghostSet, check)
		s.main.push(e)
	} else {
		s.small.push(e)
	}
	for s.small.len()+s.main.len() > s.capSmall+s.capMain {
		s.evict()
	}
}

// evict removes one entry, promoting or re-queuing the ones read since they
// were queued.
func (s *cacheShard[V]) evict() {
	if s.small.len() > s.capSmall || s.main.len() == 0 {
		e := s.small.pop()
		if e.freq.Load() > 0 {
			e.freq.Store(0)
			s.main.push(e)
			return
		}
		delete(s.m, e.key)
		s.ghost.push(e.key)
		s.ghostSet[e.key] = struct{}{}
		for s.ghost.len() > max(1, s.capMain) {
			delete(s.ghostSet, s.ghost.pop())
		}
		return
	}
	for {
		e := s.main.pop()
		if f := e.freq.Load(); f > 0 {
			e.freq.Store(f - 1)
			s.main.push(e)
			continue
		}
		delete(s.m, e.key)
		return
	}
}

// len returns the number of entries, for tests.
func (c *cache[V]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// fifo is a queue on a slice that reuses its space.
type fifo[T any] struct {
	buf  []T
	head int
}

func (q *fifo[T]) len() int { return len(q.buf) - q.head }

func (q *fifo[T]) push(v T) {
	if q.head > 0 && q.head >= len(q.buf)/2 {
		// Half the slice is consumed: move the rest down rather than grow.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, v)
}

func (q *fifo[T]) pop() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head++
	return v
}

// cacheSize is the entries a cache of Options.CacheSize holds; 0 or less
// means none.
func cacheSize(opt int) int {
	if opt == 0 {
		return DefaultCacheSize
	}
	return opt
}
