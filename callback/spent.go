package callback

import (
	"sync"
	"time"
)

// spent remembers the states whose callback this process has run or is
// running, so that a code is exchanged at most once per process even when
// two identical callbacks arrive at once (a reload during a slow callback):
// the browser's attempt cookie is deleted only when the first answer
// arrives. Entries live for the attempt's time to live (after that the
// attempt cookie is refused anyway); at most max are kept, the oldest
// forgotten first. A nil *spent remembers nothing.
type spent struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	seen  map[string]time.Time // state -> when it was claimed
	order []string             // claim order, for expiry and the cap
	head  int                  // order[head:] are live
}

func newSpent(ttl time.Duration, max int) *spent {
	return &spent{ttl: ttl, max: max, seen: make(map[string]time.Time)}
}

// claim records state as used at now and reports whether it was unused.
func (s *spent) claim(state string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Forget what expired, and the oldest beyond the cap.
	for s.head < len(s.order) {
		first := s.order[s.head]
		if t := s.seen[first]; now.Sub(t) < s.ttl && len(s.seen) < s.max {
			break
		}
		delete(s.seen, first)
		s.order[s.head] = ""
		s.head++
	}
	if s.head > len(s.order)/2 && s.head > 64 {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	if _, ok := s.seen[state]; ok {
		return false
	}
	s.seen[state] = now
	s.order = append(s.order, state)
	return true
}

// has reports whether state was claimed and is still remembered.
func (s *spent) has(state string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seen[state]
	return ok
}
