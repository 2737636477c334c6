package pipaauth_test

// An https application refuses a POST whose Origin is its own host over
// plain http: http.CrossOriginProtection compares hosts only, and a page on
// the http origin is what a network attacker serves (issue 18, item 6).

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth"
)

func TestSameOriginRefusesHTTPOriginForHTTPSApp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	if !strings.HasPrefix(h.app.url, "https://") {
		t.Fatalf("the harness app is at %s, want https", h.app.url)
	}
	insecure := "http://" + strings.TrimPrefix(h.app.url, "https://")
	b := h.app.newBrowser(t)
	b.login("/private")
	for _, path := range []string{"/logout", h.app.loginPath} {
		r := b.post(path, "Origin", insecure)
		if r.status != http.StatusForbidden {
			t.Errorf("POST %s with Origin %s: %d, want 403", path, insecure, r.status)
		}
		if errs := h.app.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrCrossOrigin) {
			t.Errorf("POST %s with Origin %s: errors %v, want one wrapping ErrCrossOrigin", path, insecure, errs)
		}
		b.mustUser()
	}
	// The https origin itself still works.
	if r := b.post("/logout", "Origin", h.app.url); r.status != http.StatusSeeOther {
		t.Errorf("POST /logout with Origin %s: %d, want 303", h.app.url, r.status)
	}
	b.mustBeLoggedOut()
}
