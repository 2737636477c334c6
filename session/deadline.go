package session

import (
	"context"
	"sync"
	"time"
)

// lazyDeadline is a context that reports deadline (or its parent's, if
// sooner) but starts a timer only when someone waits on it: a
// RevocableStore that answers from a local cache never calls Done or Err,
// so a cached load costs no timer and no goroutine, while a store that goes
// to the network waits on Done and is bounded as by context.WithDeadline.
// release must be called when the store call has returned.
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time
	canceled context.Context // a context already canceled, for after release

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *lazyDeadline) arm() context.Context {
	c.once.Do(func() { c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline) })
	return c.ctx
}

// release stops the timer, if one was started; afterwards the context is
// done.
func (c *lazyDeadline) release() {
	c.once.Do(func() { c.ctx = c.canceled })
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *lazyDeadline) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *lazyDeadline) Done() <-chan struct{} { return c.arm().Done() }
func (c *lazyDeadline) Err() error            { return c.arm().Err() }
func (c *lazyDeadline) Value(key any) any     { return c.parent.Value(key) }

// AfterFunc lets context.WithCancel and friends derive from a lazyDeadline
// without a goroutine of their own (see context.AfterFunc).
func (c *lazyDeadline) AfterFunc(f func()) func() bool { return context.AfterFunc(c.arm(), f) }
