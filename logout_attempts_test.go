package pipaauth_test

// A logout ends the browser's logins in flight, and a step-up callback
// never replaces a session that is not its subject's (issue 18, finding 4;
// RP-Initiated Logout 1.0 section 2, OWASP ASVS V3.3.1).

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/pipaauth/pipaauth"
)

// A login started before a logout (a tab restored later) cannot finish
// after it: the logout deleted its attempt cookie.
func TestLogoutEndsPendingLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	pending := b.startLogin("/private") // a tab starts a login
	callback := b.authorize(pending)    // PiPA answered; the tab is put away
	b.login("/private")                 // another tab logs in
	b.mustUser()
	if r := b.post("/logout"); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d, want 303", r.status)
	}
	b.mustBeLoggedOut()

	r := b.get(callback) // the restored tab's callback
	if r.status == http.StatusSeeOther {
		t.Fatalf("a callback pending at logout logged the browser back in (303 to %q)", r.location())
	}
	expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidState, -1)
	b.mustBeLoggedOut()
}

// After a logout and a login as bob, alice's pending step-up callback does
// not replace bob's session.
func TestStepUpCallbackRefusesAnotherSession(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	alice := h.app.newBrowser(t)
	staleSession(t, h, alice)
	// alice re-authenticates at PiPA in two tabs.
	first := alice.authorize(alice.startLogin("/recent"))
	callback := alice.authorize(alice.startLogin("/recent"))

	// Her session cookie goes without a logout here (cleared by the user,
	// expired in the browser): bob logs in on this browser.
	u, _ := url.Parse(alice.app.url)
	alice.jar.SetCookies(u, []*http.Cookie{{Name: alice.app.cookieName, Value: "", Path: "/", MaxAge: -1}})
	alice.mustBeLoggedOut()
	if r := alice.get(first); r.status != http.StatusForbidden {
		t.Fatalf("alice's step-up callback without a session: %d to %q, want 403", r.status, r.location())
	}
	if errs := h.app.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrStepUp) {
		t.Fatalf("errors %v, want one wrapping ErrStepUp", errs)
	}
	alice.mustBeLoggedOut()
	bob := h.provider.Users()[1]
	h.provider.SetUser(bob)
	alice.login("/private")
	before := alice.mustUser()
	if before.ID != h.subject(bob.Name) {
		t.Fatalf("logged in as %s, want bob", before.ID)
	}

	r := alice.get(callback)
	if r.status != http.StatusForbidden {
		t.Fatalf("alice's step-up callback on bob's session: %d to %q, want 403", r.status, r.location())
	}
	if errs := h.app.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrStepUp) {
		t.Fatalf("errors %v, want one wrapping ErrStepUp", errs)
	}
	if after := alice.mustUser(); after != before {
		t.Errorf("the session after alice's step-up callback is %+v, want bob's %+v", after, before)
	}
}
