// The test of the README's section "Testing your own app", kept here so
// that it runs and the README shows it byte for byte (everything from its
// package clause on).
package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestLoginStepUpLogout(t *testing.T) {
	provider := pipatest.NewServer() // an in-process PiPA that approves its user at once
	t.Cleanup(provider.Close)
	provider.SetUser(pipatest.User{Name: "ops", Email: "ops@example.com", EmailVerified: true, ShareEmail: true})

	// One clock for the app and PiPA, so the test can move time forward.
	var ahead atomic.Int64 // how far the clock runs ahead of time.Now
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	provider.SetClock(clock)

	// The app's server comes first: its URL is part of the Config.
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:                provider.URL,
		ClientID:              pipatest.DefaultClientID,
		ClientSecret:          pipatest.DefaultClientSecret,
		RedirectURL:           app.URL + "/callback",
		PostLogoutRedirectURL: app.URL + "/",
		SessionKeys:           [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP:     true, // httptest serves plain HTTP on loopback
		Logger:                slog.New(slog.DiscardHandler),
		Now:                   clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	routes(mux, auth)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar} // follows redirects through PiPA and back
	get := func(t *testing.T, path string) (int, string) {
		t.Helper()
		resp, err := browser.Get(app.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	// Login: /me sends the browser through PiPA and back to /me.
	if code, body := get(t, "/me"); code != 200 || !strings.HasPrefix(body, "ops@example.com") {
		t.Fatalf("GET /me: %d %q, want 200 and the user", code, body)
	}
	code, admin := get(t, "/admin")
	if code != 200 {
		t.Fatalf("GET /admin: %d %q, want 200", code, admin)
	}

	// Step-up: 10 minutes later /admin asks PiPA for a new sign-in (max_age).
	ahead.Add(int64(10 * time.Minute))
	if code, body := get(t, "/admin"); code != 200 || body == admin {
		t.Fatalf("GET /admin after 10 minutes: %d %q, want 200 and a new sign-in time (was %q)", code, body, admin)
	}

	// Logout: a POST, then PiPA sends the browser back to the public page.
	resp, err := browser.PostForm(app.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, body := get(t, "/"); code != 200 || !strings.Contains(body, "Log in with PiPA") {
		t.Fatalf("GET / after logout: %d %q, want the login link", code, body)
	}
}
