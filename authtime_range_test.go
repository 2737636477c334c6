package pipaauth_test

// An ID token's auth_time (and nbf) outside a sane range is refused rather
// than overflowing User.AuthTime, which then could not be JSON-encoded
// (issue 18, item 6).

import (
	"net/http"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestIDTokenTimesOutOfRangeRefused(t *testing.T) {
	t.Parallel()
	set := func(claim string, v any) func(*harness) func(map[string]any) {
		return func(*harness) func(map[string]any) { return func(c map[string]any) { c[claim] = v } }
	}
	tests := []struct {
		name string
		hook func(h *harness) func(map[string]any)
	}{
		{"auth_time 1e300", set("auth_time", 1e300)},
		{"auth_time -1e300", set("auth_time", -1e300)},
		{"auth_time negative", set("auth_time", -5)},
		{"nbf 1e300", set("nbf", 1e300)},
		{"nbf -1e300", set("nbf", -1e300)},
		// Not ahead of the application's clock, but after the token's iat.
		{"auth_time after iat", func(h *harness) func(map[string]any) {
			return func(c map[string]any) {
				c["iat"] = h.clock.Now().Add(-time.Hour).Unix()
				c["auth_time"] = h.clock.Now().Add(-30 * time.Minute).Unix()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{})
			b := h.app.newBrowser(t)
			auth := b.startLogin("/private")
			h.setBehavior(pipatest.Behavior{ClaimsHook: tt.hook(h)})
			r := b.finish(auth)
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
			b.mustBeLoggedOut()
		})
	}
}
