package main

import (
	"sync"
	"time"
)

// clockStep is how far the home page's "Move the clock ahead" button moves
// the demo's clock: more than /admin's adminMaxAge plus pipaauth's default
// ClockSkew, so that one click makes an admin session stale.
const clockStep = 10 * time.Minute

// demoClock is the clock of a demo with the embedded PiPA, shared by the app
// (Config.Now) and the embedded provider (pipatest's SetClock): real time
// plus an offset that only grows. Moving it ahead lets a visitor see
// RequireRecentLogin's step-up without waiting; since both sides use it,
// the checks are the real ones (the provider's max_age, the app's
// auth_time), only the time they compare is later. It never goes back:
// sessions and sign-ins would then lie in the future.
type demoClock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the demo's time.
func (c *demoClock) Now() time.Time {
	return time.Now().Add(c.Ahead())
}

// Ahead is how far the clock is ahead of real time.
func (c *demoClock) Ahead() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Advance moves the clock ahead by d (d <= 0 does nothing).
func (c *demoClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
