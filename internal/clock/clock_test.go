package clock

import (
	"sync"
	"testing"
	"time"
)

// slack is how late a refresh may run on a loaded test machine (under
// -race, beside other test binaries) before a test calls it a failure.
const slack = 500 * time.Millisecond

func TestCoarseFollowsTimeNow(t *testing.T) {
	var c Coarse
	first := c.Now()
	deadline := time.Now().Add(100 * Period)
	for time.Now().Before(deadline) {
		before := time.Now()
		got := c.Now()
		after := time.Now()
		if got.After(after) {
			t.Fatalf("Now() = %v, after time.Now() = %v", got, after)
		}
		if got.Before(before.Add(-Period - slack)) {
			t.Fatalf("Now() = %v, %v behind time.Now(): the reading is not refreshed", got, before.Sub(got))
		}
	}
	if last := c.Now(); last.Sub(first) < 50*Period {
		t.Fatalf("over %v of reads the reading moved %v: it is not refreshed", 100*Period, last.Sub(first))
	}
}

func TestCoarseStopsWhenIdle(t *testing.T) {
	var c Coarse
	c.Now()
	if !c.armed.Load() {
		t.Fatal("the first Now did not start the timer")
	}
	// Without reads, the timer stops after a period or two.
	deadline := time.Now().Add(2*Period + slack)
	for c.armed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the timer still runs after a second without reads")
		}
		time.Sleep(Period / 2)
	}
	// The next read after a pause is the current time, not the old reading.
	time.Sleep(5 * Period)
	before := time.Now()
	if got := c.Now(); got.Before(before.Round(0)) {
		t.Fatalf("Now() after a pause = %v, before %v: an old reading", got, before)
	}
	if !c.armed.Load() {
		t.Fatal("a read after a pause did not start the timer again")
	}
}

// The timer's decision is the read flag: tick refreshes the reading when
// Now was called since the last tick, and stops otherwise.
func TestCoarseTick(t *testing.T) {
	var c Coarse
	// A timer that calls nothing: this test makes every tick itself.
	quiet := time.AfterFunc(time.Hour, func() {})
	defer quiet.Stop()
	c.timer.Store(quiet)
	c.armed.Store(true)
	old := time.Unix(0, 0)
	c.now.Store(&old)
	c.read.Store(true)
	c.tick()
	if got := *c.now.Load(); got.Equal(old) || !c.armed.Load() {
		t.Fatalf("a tick after a read: reading %v, armed %v; want a new reading, armed", got, c.armed.Load())
	}
	c.read.Store(false)
	c.tick()
	if c.armed.Load() {
		t.Fatal("a tick without a read since the last left the timer armed")
	}
}

// Concurrent readers, through stops and starts of the timer, each see a
// time that never goes back and trails time.Now by at most a period (and
// the slack of a loaded test machine).
func TestCoarseConcurrent(t *testing.T) {
	var c Coarse
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var prev time.Time
			for i := range 2000 {
				before := time.Now()
				got := c.Now()
				if got.Before(prev) || got.Before(before.Add(-Period-slack)) || got.After(time.Now()) {
					t.Errorf("Now() = %v after %v, at %v", got, prev, before)
					return
				}
				prev = got
				if i%500 == 0 {
					time.Sleep(3 * Period) // let the timer stop and start again
				}
			}
		})
	}
	wg.Wait()
}

// A reading never replaces a newer one: a start that lost a race to a
// tick, and stored late, would otherwise step the clock back.
func TestCoarseKeepsTheNewerReading(t *testing.T) {
	var c Coarse
	ahead := time.Now().Add(time.Hour)
	c.now.Store(&ahead)
	if got := c.store(); !got.Equal(ahead) || !c.now.Load().Equal(ahead) {
		t.Fatalf("store() = %v, kept %v; want the newer reading %v kept", got, *c.now.Load(), ahead)
	}
	behind := time.Now().Add(-time.Hour)
	c.now.Store(&behind)
	if got := c.store(); !got.After(behind) || !c.now.Load().Equal(got) {
		t.Fatalf("store() = %v, kept %v; want a new reading over %v", got, *c.now.Load(), behind)
	}
}

func BenchmarkCoarse(b *testing.B) {
	var c Coarse
	var sink time.Time
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			sink = time.Now()
		}
	})
	b.Run("Coarse.Now", func(b *testing.B) {
		for b.Loop() {
			sink = c.Now()
		}
	})
	_ = sink
}
