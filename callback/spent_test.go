package callback

import (
	"fmt"
	"testing"
	"time"
)

func TestSpent(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newSpent(10*time.Minute, 3)
	if !s.claim("a", now) {
		t.Fatal("first claim of a refused")
	}
	if s.claim("a", now.Add(time.Second)) {
		t.Error("second claim of a accepted")
	}
	// Forgotten once the attempt's time to live has passed (its cookie is
	// refused by then anyway).
	if !s.claim("a", now.Add(10*time.Minute)) {
		t.Error("a is still remembered after the time to live")
	}
	// At most max entries: the oldest goes first.
	s = newSpent(10*time.Minute, 3)
	for i := range 4 {
		s.claim(fmt.Sprint(i), now)
	}
	if len(s.seen) > 3 {
		t.Errorf("%d states remembered, want at most 3", len(s.seen))
	}
	if s.claim("3", now) || s.claim("2", now) {
		t.Error("a recent state was forgotten")
	}
	if !s.claim("0", now) {
		t.Error("the oldest state was kept past the cap")
	}
	// The order slice does not grow without bound.
	s = newSpent(time.Minute, 100)
	for i := range 10_000 {
		s.claim(fmt.Sprint(i), now.Add(time.Duration(i)*time.Second))
	}
	if len(s.seen) > 100 || len(s.order)-s.head != len(s.seen) || cap(s.order) > 1000 {
		t.Errorf("after 10000 claims: %d remembered, order %d (head %d, cap %d)", len(s.seen), len(s.order), s.head, cap(s.order))
	}
}
