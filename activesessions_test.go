package pipaauth_test

// pipatest counts right (issue 18, item 10): a step-up re-signs the user in
// within the same provider session instead of opening a second one, so a
// login, a step-up and a logout leave no provider session.

import (
	"net/http"
	"strings"
	"testing"
)

func TestActiveSessionsAfterStepUp(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	staleSession(t, h, b)
	if n := h.provider.ActiveSessions("alice"); n != 1 {
		t.Fatalf("after the login: %d provider sessions, want 1", n)
	}
	if r := b.finish(b.startLogin("/recent")); r.status != http.StatusSeeOther {
		t.Fatalf("step-up callback: %d, want 303", r.status)
	}
	if n := h.provider.ActiveSessions("alice"); n != 1 {
		t.Errorf("after the step-up: %d provider sessions, want 1", n)
	}
	r := b.post("/logout")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), h.provider.URL) {
		t.Fatalf("logout: %d to %q, want 303 to PiPA's end-session endpoint", r.status, r.location())
	}
	b.get(r.location()) // PiPA ends its session
	if n := h.provider.ActiveSessions("alice"); n != 0 {
		t.Errorf("after the logout: %d provider sessions, want 0", n)
	}
}
