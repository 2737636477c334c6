package pipaauth_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestAuthUserOnPublicPage(t *testing.T) {
	ta := newTokenApp(t, false, nil, nil)
	probe := func(r *http.Request) string {
		u, ok := ta.auth.User(r)
		if !ok {
			return "anonymous"
		}
		return u.Email
	}
	req, _ := http.NewRequest("GET", ta.app.URL+"/", nil)
	for _, c := range ta.jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	if got := probe(req); got != "alice@example.com" {
		t.Errorf("User with a session = %q, want alice@example.com", got)
	}
	bare, _ := http.NewRequest("GET", ta.app.URL+"/", nil)
	if got := probe(bare); got != "anonymous" {
		t.Errorf("User without a session = %q, want anonymous", got)
	}
	bare.Header.Set("Cookie", plainCookieName+"=forged")
	if got := probe(bare); got != "anonymous" {
		t.Errorf("User with a forged cookie = %q, want anonymous", got)
	}
	ctx := pipaauth.ContextWithUser(bare.Context(), pipaauth.User{ID: "x", Email: "ctx@example.com"})
	if got := probe(bare.WithContext(ctx)); got != "ctx@example.com" {
		t.Errorf("User with a user in the context = %q", got)
	}
}

// A link to the callback with an error but no matching state is anyone's to
// craft: its text must not reach the page.
func TestForgedProviderErrorIsNotEchoed(t *testing.T) {
	ta := newTokenApp(t, false, nil, nil)
	for _, tt := range []struct {
		name, query string
		status      int
	}{
		{"forged, no state", "error=Your_account_is_locked_call_555", http.StatusBadRequest},
		{"forged, unknown state, no iss", "error=access_denied&state=nope", http.StatusBadRequest},
		{"forged, unknown state, right iss", "error=access_denied&state=nope&iss=ISS", http.StatusForbidden},
		{"forged, wrong iss", "error=Your_account_is_locked&state=nope&iss=https%3A%2F%2Fevil.example", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(ta.app.URL + "/callback?" + strings.ReplaceAll(tt.query, "ISS", url.QueryEscape(ta.provider.URL)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if strings.Contains(string(body), "Your_account") || strings.Contains(string(body), "access_denied") {
				t.Errorf("the page echoes the forged error code: %s", body)
			}
		})
	}
	// A genuine refusal (the state matches a login this browser started)
	// does show its code.
	ta.provider.SetBehavior(pipatest.Behavior{AuthorizeError: "access_denied"})
	code, body := ta.get(t, "/login")
	if code != http.StatusForbidden || !strings.Contains(body, "access_denied") {
		t.Errorf("genuine access_denied: %d %q, want 403 naming the code", code, body)
	}
}

// ContextWithUser and UserFromContext carry every field of a User across the
// conversion to the session package's type and back.
func TestContextWithUserKeepsEveryField(t *testing.T) {
	want := pipaauth.User{ID: "u-1", Email: "a@example.com", EmailVerified: true, AuthTime: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	got, ok := pipaauth.UserFromContext(pipaauth.ContextWithUser(context.Background(), want))
	if !ok || got != want {
		t.Errorf("UserFromContext(ContextWithUser(%+v)) = %+v, %v; want it back, true", want, got, ok)
	}
	if got, ok := pipaauth.UserFromContext(context.Background()); ok || got != (pipaauth.User{}) {
		t.Errorf("UserFromContext(empty context) = %+v, %v; want the zero User, false", got, ok)
	}
}
