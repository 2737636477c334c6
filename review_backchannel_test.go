package pipaauth_test

// Regression found by the security review of the day's merge (issue 18,
// finding 5, by sub): it fails on the code before its fix.

import (
	"net/http"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/memstore"
	"github.com/pipaauth/pipaauth/pipatest"
)

// A back-channel logout naming only the user (sub), arriving while a login
// of that user is being finished, ends that login too.
func TestBackChannelLogoutBySubEndsLoginInFlight(t *testing.T) {
	b := newBCL(t, false, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) {
		cfg.SessionStore = memstore.New(memstore.Options{Now: cfg.Now})
	}})
	br := b.h.app.newBrowser(t)
	callback := br.authorize(br.startLogin("/private"))
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{})); r.status != http.StatusOK {
		t.Fatalf("back-channel logout by sub: %d %s", r.status, r.body)
	}
	if r := br.get(callback); r.status == http.StatusSeeOther {
		if _, st := br.user(); st == http.StatusOK {
			t.Fatal("a login finished after a back-channel logout of its user (by sub) is live")
		}
	}
	b.h.app.takeErrors()
}
