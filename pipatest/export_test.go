package pipatest

import "time"

// SetNow replaces the server's clock, for tests of expiry.
func SetNow(s *Server, now func() time.Time) { s.SetClock(now) }
