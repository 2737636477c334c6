package pipaauth_test

import (
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
	h := newHarness(t, setup{plainHTTP: true, configure: func(c *pipaauth.Config) {
		c.Now = nil
		c.IdleTimeout = idle
	}})
	b := h.app.newBrowser(t)
	b.login("/private")
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
	h := newHarness(t, setup{plainHTTP: true, configure: func(c *pipaauth.Config) {
		c.Now = nil
		c.SessionLifetime = lifetime
	}})
	b := h.app.newBrowser(t)
	b.login("/private")
	b.mustUser()
	time.Sleep(lifetime * 13 / 10)
	b.mustBeLoggedOut()
}
