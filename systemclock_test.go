package pipaauth_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
)

// Without Config.Now, the guard checks lifetimes and idle timeouts on a
// clock refreshed every 10 ms (internal/clock): sessions still slide and
// end on the system's time, within milliseconds.
func TestIdleTimeoutOnTheSystemClock(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	b := loginOnTheSystemClock(t, func(c *pipaauth.Config) { c.IdleTimeout = idle })
	b.mustUser()
	time.Sleep(idle * 6 / 10)
	b.mustUser() // slides the idle timeout (its last write is over idle/10 old)
	time.Sleep(idle * 6 / 10)
	b.mustUser() // 1.2 idle periods after the login: alive because it slid
	time.Sleep(idle * 13 / 10)
	b.mustBeLoggedOut()
}

func TestLifetimeOnTheSystemClock(t *testing.T) {
	t.Parallel()
	const lifetime = 2 * time.Second
	b := loginOnTheSystemClock(t, func(c *pipaauth.Config) { c.SessionLifetime = lifetime })
	b.mustUser()
	time.Sleep(lifetime * 13 / 10)
	b.mustBeLoggedOut()
}

// Under steady traffic the guard reads the refreshed copy of the clock,
// never time.Now: a session must still end with its lifetime, not later
// than a few refresh periods (the copy is 10 ms old at most, more on a
// loaded machine).
func TestLifetimeUnderTrafficOnTheSystemClock(t *testing.T) {
	t.Parallel()
	const lifetime = 1500 * time.Millisecond
	b := loginOnTheSystemClock(t, func(c *pipaauth.Config) { c.SessionLifetime = lifetime })
	end := time.Now().Add(lifetime) // the login ended before this
	late := time.Duration(math.MinInt64)
	served := 0
	for time.Now().Before(end.Add(600 * time.Millisecond)) {
		start := time.Now()
		if _, status := b.user(); status == http.StatusOK {
			late = max(late, start.Sub(end))
			served++
		}
	}
	if served == 0 {
		t.Fatal("no request was served: the session never worked")
	}
	if late > 200*time.Millisecond {
		t.Errorf("a request that started %v after the session's end was served", late)
	}
}

// loginOnTheSystemClock logs alice in to an app whose Config has no Now
// (the guard then runs on internal/clock) and is edited by edit.
func loginOnTheSystemClock(t *testing.T, edit func(*pipaauth.Config)) *browser {
	t.Helper()
	h := newHarness(t, setup{plainHTTP: true, configure: func(c *pipaauth.Config) {
		c.Now = nil
		edit(c)
	}})
	b := h.app.newBrowser(t)
	b.login("/private")
	return b
}
