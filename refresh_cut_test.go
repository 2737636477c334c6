package pipaauth_test

// A refresh whose triggering request ends before PiPA answers must not lose
// the rotated refresh token (RFC 9700 section 4.14.2): the next request of
// the session gets what PiPA issued instead of spending the old token again,
// which PiPA's reuse detection punishes by ending the session.

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestRefreshCutRequestKeepsRotatedToken(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		name := "cookie"
		if store {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ra := newTokenApp(t, true, func(c *pipaauth.Config) {
				if store {
					c.SessionStore = newMemRevocable()
				}
			}, nil)
			ra.provider.SetBehavior(pipatest.Behavior{TokenDelay: 400 * time.Millisecond})
			ra.advance(2 * time.Hour) // the access token is due
			before := ra.provider.TokenRequests()

			// The browser navigates away at 200 ms, before PiPA answers.
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, ra.app.URL+"/token", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp, err := ra.noFollow.Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("the cut request answered %d", resp.StatusCode)
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the cut request: %v", err)
			}
			eventually(t, "PiPA never answered the refresh", func() bool { return ra.provider.TokenRequests()-before == 1 })
			time.Sleep(600 * time.Millisecond) // the refresh's answer reaches the application
			ra.provider.SetBehavior(pipatest.Behavior{})

			// Later than the 2-minute memo of parallel requests.
			ra.advance(10 * time.Minute)
			if code, body := ra.token(t); code != http.StatusOK {
				t.Fatalf("the next request: /token %d %q, want 200 (the rotated refresh token was lost)", code, body)
			}
			if code, body := ra.token(t); code != http.StatusOK {
				t.Fatalf("the request after: /token %d %q, want 200", code, body)
			}
		})
	}
}
