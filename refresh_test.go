package pipaauth_test

// Full-flow tests of refresh decisions (issue 8): OAuth errors whatever the
// status line, the lifetime-dependent margin, refreshed ID tokens, and
// rotated refresh tokens that cannot be saved.

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestRefreshDecidesOnTheOAuthError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		code   string
		status int
		want   int // /token status: 401 the session ended, 502 temporary
	}{
		{"invalid_grant in a 200", "invalid_grant", 0, http.StatusUnauthorized},
		{"invalid_grant in a 400", "invalid_grant", http.StatusBadRequest, http.StatusUnauthorized},
		{"invalid_grant in a 500", "invalid_grant", http.StatusInternalServerError, http.StatusUnauthorized},
		{"unauthorized_client in a 200", "unauthorized_client", 0, http.StatusUnauthorized},
		{"server_error in a 200", "server_error", 0, http.StatusBadGateway},
		{"temporarily_unavailable in a 503", "temporarily_unavailable", http.StatusServiceUnavailable, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ra := newTokenApp(t, true, nil, nil)
			ra.provider.SetBehavior(pipatest.Behavior{RefreshError: tt.code, RefreshErrorStatus: tt.status})
			ra.advance(2 * time.Hour)
			before := ra.provider.TokenRequests()
			if code, body := ra.token(t); code != tt.want {
				t.Fatalf("/token: %d %q, want %d", code, body, tt.want)
			}
			if n := ra.provider.TokenRequests() - before; n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
			code, _ := ra.token(t)
			if tt.want == http.StatusUnauthorized {
				// The session is over: the guard sends the browser to PiPA
				// and no refresh token is spent again.
				if code != http.StatusFound || ra.provider.TokenRequests()-before != 1 {
					t.Errorf("after a refusal: /token %d with %d token requests, want 302 and no new request", code, ra.provider.TokenRequests()-before)
				}
				return
			}
			if code != tt.want || ra.provider.TokenRequests()-before != 2 {
				t.Errorf("after a temporary failure: /token %d with %d token requests, want %d and a retry", code, ra.provider.TokenRequests()-before, tt.want)
			}
			ra.provider.SetBehavior(pipatest.Behavior{})
			if code, body := ra.token(t); code != http.StatusOK {
				t.Errorf("once PiPA is back: /token %d %q, want 200", code, body)
			}
		})
	}
}

func TestRefreshMarginFollowsTheLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lifetime time.Duration
		quiet    time.Duration // no refresh up to this age
		due      time.Duration // refreshed at this age
	}{
		// A quarter of 20 s is 5 s: refreshed after 15 s, never before.
		{"20s", 20 * time.Second, 14 * time.Second, 16 * time.Second},
		{"2m", 2 * time.Minute, 89 * time.Second, 91 * time.Second},
		// Long-lived tokens: 30 s before expiry.
		{"1h", time.Hour, time.Hour - 31*time.Second, time.Hour - 29*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ra := newTokenApp(t, true, nil, func(p *pipatest.Server) { p.SetAccessTokenLifetime(tt.lifetime) })
			before := ra.provider.TokenRequests()
			_, first := ra.token(t)
			for range 5 {
				ra.token(t)
			}
			ra.advance(tt.quiet)
			if code, got := ra.token(t); code != http.StatusOK || got != first || ra.provider.TokenRequests() != before {
				t.Fatalf("at %s of a %s token: %d, %d refreshes, want none", tt.quiet, tt.lifetime, code, ra.provider.TokenRequests()-before)
			}
			ra.advance(tt.due - tt.quiet)
			if code, got := ra.token(t); code != http.StatusOK || got == first || ra.provider.TokenRequests()-before != 1 {
				t.Fatalf("at %s of a %s token: %d, %d refreshes, want one", tt.due, tt.lifetime, code, ra.provider.TokenRequests()-before)
			}
			for range 5 {
				ra.token(t)
			}
			if n := ra.provider.TokenRequests() - before; n != 1 {
				t.Errorf("the fresh token was refreshed again: %d refreshes", n)
			}
		})
	}
}

func TestRefreshedIDTokenMustNameTheSameUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    pipatest.Behavior
		want int
	}{
		{"same user", pipatest.Behavior{}, http.StatusOK},
		// Another sub or iss ends the session (401); any other failed check
		// fails the refresh (its tokens unused, 502 here) and keeps it.
		{"other sub", pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["sub"] = "someone-else" }}, http.StatusUnauthorized},
		{"other aud", pipatest.Behavior{WrongAudience: true}, http.StatusBadGateway},
		{"extra aud", pipatest.Behavior{ExtraAudience: true}, http.StatusBadGateway},
		{"other iss", pipatest.Behavior{WrongIssuer: true}, http.StatusUnauthorized},
		{"bad signature", pipatest.Behavior{BadSignature: true}, http.StatusBadGateway},
		{"expired", pipatest.Behavior{Expired: true}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ra := newTokenApp(t, true, nil, nil)
			ra.provider.SetBehavior(tt.b)
			ra.advance(2 * time.Hour)
			if code, body := ra.token(t); code != tt.want {
				t.Errorf("/token after a refresh: %d %q, want %d", code, body, tt.want)
			}
		})
	}
}

func TestRotatedTokensTooLargeEndTheSession(t *testing.T) {
	t.Parallel()
	ra := newTokenApp(t, true, nil, nil)
	ra.provider.SetBehavior(pipatest.Behavior{TokenHook: func(resp map[string]any) {
		resp["refresh_token"] = resp["refresh_token"].(string) + strings.Repeat("r", 3000)
	}})
	ra.advance(2 * time.Hour)
	before := ra.provider.TokenRequests()
	resp, err := ra.noFollow.Get(ra.app.URL + "/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/token with new tokens too large for the cookie: %d, want 401 (session ended)", resp.StatusCode)
	}
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == plainCookieName && c.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("the session cookie was not cleared: %q", resp.Header.Values("Set-Cookie"))
	}
	// The old refresh token is never sent again.
	if code, _ := ra.token(t); code != http.StatusFound || ra.provider.TokenRequests()-before != 1 {
		t.Errorf("next /token: %d with %d token requests, want 302 (log in) and no new request", code, ra.provider.TokenRequests()-before)
	}
}

// flakyStore is a filesystem store whose Save fails while fail is set.
type flakyStore struct {
	*sessions.FilesystemStore
	fail atomic.Bool
}

func (s *flakyStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if s.fail.Load() {
		return errors.New("flaky store: save failed")
	}
	return s.FilesystemStore.Save(r, w, sess)
}

func TestRotatedTokenKeptWhenSaveFails(t *testing.T) {
	t.Parallel()
	store := &flakyStore{FilesystemStore: sessions.NewFilesystemStore(t.TempDir(), newKeys()[0])}
	ra := newTokenApp(t, true, func(c *pipaauth.Config) { c.SessionStore = store }, nil)
	ra.advance(2 * time.Hour)
	store.fail.Store(true)
	before := ra.provider.TokenRequests()
	if code, _ := ra.token(t); code == http.StatusOK {
		t.Fatalf("/token with a failing store: 200, want an error (the old token is not current)")
	}
	if n := ra.provider.TokenRequests() - before; n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	store.fail.Store(false)
	// Well after the 2-minute memo of concurrent refreshes, the session
	// still holds the spent refresh token: it must get what PiPA issued,
	// not spend the old token again (PiPA would revoke the whole family).
	ra.advance(10 * time.Minute)
	code, got := ra.token(t)
	if code != http.StatusOK {
		t.Fatalf("/token once the store works: %d %q, want 200", code, got)
	}
	if n := ra.provider.TokenRequests() - before; n != 1 {
		t.Errorf("%d token requests, want 1 (the kept result was used)", n)
	}
	if code, again := ra.token(t); code != http.StatusOK || again != got {
		t.Errorf("the kept tokens were not saved: %d %q, want %q", code, again, got)
	}
	// And the saved refresh token works.
	ra.advance(2 * time.Hour)
	if code, _ := ra.token(t); code != http.StatusOK || ra.provider.TokenRequests()-before != 2 {
		t.Errorf("next refresh: %d with %d token requests, want 200 and 2", code, ra.provider.TokenRequests()-before)
	}
}
