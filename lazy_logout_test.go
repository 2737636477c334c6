package pipaauth_test

// LazyDiscovery and the logout and callback (found by the security review).

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
)

// With LazyDiscovery, a logout made after PiPA came back but before the
// background retry applied the document (the retries back off to a minute
// apart, while a request fetches on its own after one second) fetches the
// document once and uses it for both the revocation and the end-session
// redirect: it must not redirect to PiPA and skip the revocation.
func TestLazyLogoutRevokes(t *testing.T) {
	p := newFlakyPiPA(t)
	keys := newKeys()
	keep := func(c *pipaauth.Config) { c.KeepTokens = true }
	b := newLazyBrowser(t, p)
	before := newLazyApp(t, p, keys, false, keep)
	b.login(before, p)

	// The application restarts during a PiPA outage, with the same keys;
	// the background retries back off (20ms, 40ms, ... up to an hour).
	p.down.Store(true)
	after := newLazyApp(t, p, keys, true, func(c *pipaauth.Config) { c.KeepTokens = true }, 20*time.Millisecond, time.Hour)
	eventually(t, "8 discovery attempts", func() bool { return p.fetches.Load() >= 8 })
	// The next background retry is now at least 2.5s away. PiPA comes back,
	// and the user logs out.
	p.down.Store(false)
	time.Sleep(50 * time.Millisecond) // past the retry minimum a request waits for
	r := b.do("POST", after.srv.URL+"/logout")
	if r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if !strings.HasPrefix(r.location(), p.front.URL+"/end_session?") {
		t.Skipf("logout went to %q: discovery was not fetched in this request", r.location())
	}
	if got := p.provider.Revocations(); len(got) == 0 {
		t.Errorf("logout redirected to PiPA's end_session (discovery fetched in the same request) but revoked nothing: the refresh token stays valid; log:\n%s", after.logs.String())
	}
}

// With LazyDiscovery, a callback answered 503 before discovery is applied
// (for example by a freshly restarted instance of a fleet) is a page with
// links at a URL that holds the code and state: it carries
// Referrer-Policy: no-referrer like every other callback answer.
func TestLazyCallback503HasNoReferrer(t *testing.T) {
	t.Parallel()
	p := newFlakyPiPA(t)
	p.down.Store(true)
	app := newLazyApp(t, p, nil, true, nil)
	r := newLazyBrowser(t, p).do("GET", app.srv.URL+"/callback?state=s&code=the-code")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("callback while PiPA is down: %d", r.status)
	}
	if got := r.header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("503 callback page without Referrer-Policy: no-referrer (got %q); its links: %v", got, strings.Contains(r.body, `href="/login"`))
	}
}
