// Package clock is the wall clock of the guard's hot path: a cached
// reading of time.Now, refreshed by a timer while requests read it, as web
// servers keep theirs (nginx reads the time once per event loop turn).
package clock

import (
	"sync"
	"sync/atomic"
	"time"
)

// Period is how often a Coarse refreshes its reading while it is read.
const Period = 10 * time.Millisecond

// Coarse is a wall clock whose Now costs three atomic loads instead of a
// system clock read (which costs 25 to 55 ns on virtual machines whose
// clock source is kvm-clock or xen, as on most cloud servers). It keeps a
// reading of time.Now, refreshed every Period by a timer while Now is
// called; a Period without calls stops the timer, and the next call reads
// time.Now itself and starts it again. No goroutine outlives a refresh.
//
// So its times trail time.Now by at most Period plus the timer's latency:
// 10 ms, more only while the CPU is saturated, when timers run late, and
// for the first reads after the process was stopped (SIGSTOP, a debugger),
// which may see the reading from before the pause until the timer runs. A
// reading never replaces a newer one. Use it where a few milliseconds do
// not matter (session lifetimes and idle timeouts, which count in
// minutes), never for protocol checks (token expiry and issue times use
// time.Now).
//
// The zero Coarse is ready to use; it is safe for concurrent use.
type Coarse struct {
	now   atomic.Pointer[time.Time] // the last reading
	armed atomic.Bool               // the timer will refresh now
	read  atomic.Bool               // Now was called since the last refresh
	once  sync.Once
	timer atomic.Pointer[time.Timer] // made by the first start; tick reads it, so it is stored before the timer is first armed
}

// Now returns the wall time, at most Period (plus the timer's latency)
// behind time.Now.
func (c *Coarse) Now() time.Time {
	if c.armed.Load() {
		if !c.read.Load() {
			c.read.Store(true)
		}
		return *c.now.Load()
	}
	return c.start()
}

// start reads time.Now and, unless another call did so already, arms the
// timer.
func (c *Coarse) start() time.Time {
	now := c.store()
	c.read.Store(true)
	if c.armed.CompareAndSwap(false, true) {
		c.once.Do(func() {
			// Made stopped, and armed by the Reset below once stored:
			// the first tick must find it.
			t := time.AfterFunc(time.Hour, c.tick)
			t.Stop()
			c.timer.Store(t)
		})
		c.timer.Load().Reset(Period)
	}
	return now
}

// tick refreshes the reading if it was read in the last Period, and
// otherwise stops.
func (c *Coarse) tick() {
	if !c.read.Swap(false) {
		c.armed.Store(false)
		return
	}
	c.store()
	c.timer.Load().Reset(Period)
}

// store reads time.Now and keeps it unless another call kept a newer
// reading meanwhile (they are compared by their monotonic readings), and
// returns the reading kept.
func (c *Coarse) store() time.Time {
	now := time.Now()
	for {
		old := c.now.Load()
		if old != nil && !now.After(*old) {
			return *old
		}
		if c.now.CompareAndSwap(old, &now) {
			return now
		}
	}
}
