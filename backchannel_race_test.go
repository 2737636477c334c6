package pipaauth_test

// A back-channel logout naming a sid that arrives while a login with that
// sid is being finished (issue 18, finding 5): the login must not create a
// session for a provider session that is over.

import (
	"net/http"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestBackChannelLogoutRacingLoginWithSameSID(t *testing.T) {
	store := newMemRevocable()
	b := newBCL(t, false, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) { cfg.SessionStore = store }})
	b.h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["sid"] = "op-session-1" }})
	br := b.h.app.newBrowser(t)
	callback := br.authorize(br.startLogin("/private")) // PiPA issued the code

	// PiPA's session ends before the application finished the login: the
	// logout ends nothing yet.
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{OmitSubject: true, SID: "op-session-1"})); r.status != http.StatusOK {
		t.Fatalf("back-channel logout by sid: %d %s", r.status, r.body)
	}
	r := br.get(callback)
	if r.status == http.StatusSeeOther {
		t.Fatalf("the login finished after its sid was revoked (303 to %q)", r.location())
	}
	expectFailure(t, b.h, r, http.StatusUnauthorized, pipaauth.ErrLoginRequired, -1)
	br.mustBeLoggedOut()
	if n := store.len(); n != 0 {
		t.Errorf("the store holds %d sessions, want 0", n)
	}

	// Another provider session logs in as usual, and may log in again.
	b.h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["sid"] = "op-session-2" }})
	for range 2 {
		other := b.h.app.newBrowser(t)
		other.login("/private")
		other.mustUser()
	}
}
