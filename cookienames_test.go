package pipaauth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// twoApps returns a harness whose app is A (the default client) and a
// second application B on the same host (another port of 127.0.0.1:
// cookies ignore ports) with a client id of its own, both with the default
// cookie name, and a browser for each sharing one cookie jar.
func twoApps(t *testing.T) (h *harness, a, b *browser) {
	t.Helper()
	h = newHarness(t, setup{})
	h.provider.RegisterClient(pipatest.Client{ID: "app-b", Secret: "secret-b"})
	appB := h.newApp(setup{configure: func(cfg *pipaauth.Config) {
		cfg.ClientID, cfg.ClientSecret = "app-b", "secret-b"
	}})
	if appB.cookieName == h.app.cookieName {
		t.Fatalf("both applications use the session cookie %s", appB.cookieName)
	}
	a, b = h.app.newBrowser(t), appB.newBrowser(t)
	b.jar, b.c.Jar = a.jar, a.jar
	return h, a, b
}

func TestTwoApplicationsOnOneHost(t *testing.T) {
	t.Parallel()
	for _, order := range []string{"A then B", "B then A"} {
		t.Run(order, func(t *testing.T) {
			t.Parallel()
			_, a, b := twoApps(t)
			first, second := a, b
			if order == "B then A" {
				first, second = b, a
			}
			first.login("/private")
			second.login("/private")
			if ua, ub := a.mustUser(), b.mustUser(); ua.ID == "" || ub.ID == "" || ua.ID == ub.ID {
				t.Errorf("users %q and %q: want both logged in, each with its own pairwise subject", ua.ID, ub.ID)
			}
			// Logging out of one leaves the other.
			if r := second.post("/logout", "Sec-Fetch-Site", "same-origin"); r.status != http.StatusSeeOther {
				t.Fatalf("logout: %d", r.status)
			}
			second.mustBeLoggedOut()
			first.mustUser()
		})
	}
}

// Logins in flight in both applications at once: a start in one never
// deletes the other's attempt cookies.
func TestTwoApplicationsParallelLogins(t *testing.T) {
	t.Parallel()
	_, a, b := twoApps(t)
	authA := a.startLogin("/private")
	authB := b.startLogin("/admin")
	authA2 := a.startLogin("/staff") // a second tab of A, after B's start
	if loc := b.login("/ids"); loc != "/ids" {
		t.Errorf("B's login lands on %q", loc)
	}
	for _, tc := range []struct {
		br   *browser
		auth string
		want string
	}{{a, authA, "/private"}, {b, authB, "/admin"}, {a, authA2, "/staff"}} {
		r := tc.br.finish(tc.auth)
		if r.status != http.StatusSeeOther || r.location() != tc.want {
			t.Errorf("finishing the login to %s: %d to %q; errors %v", tc.want, r.status, r.location(), tc.br.app.takeErrors())
		}
	}
	a.mustUser()
	b.mustUser()

	// Concurrently, from one jar.
	var wg sync.WaitGroup
	for _, br := range []*browser{a, b, a, b} {
		wg.Go(func() {
			r := br.finish(br.startLogin("/login?return_to=%2Fstaff"))
			if r.status != http.StatusSeeOther {
				t.Errorf("parallel login: %d; errors %v", r.status, br.app.takeErrors())
			}
		})
	}
	wg.Wait()
	a.mustUser()
	b.mustUser()
}

// A session cookie written by the main before this change, under the old
// default name, keeps the user logged in and moves to the new name on the
// session's next write (here the idle-timeout slide).
func TestUpgradeDefaultCookieName(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/upgrade-default-cookie-name.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		HashKey     string `json:"hash_key"`
		BlockKey    string `json:"block_key"`
		LoginAt     int64  `json:"login_at"`
		Name        string `json:"name"`
		CookieValue string `json:"cookie_value"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	hk, _ := base64.StdEncoding.DecodeString(f.HashKey)
	bk, _ := base64.StdEncoding.DecodeString(f.BlockKey)
	now := time.Unix(f.LoginAt, 0).Add(5 * time.Minute)
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		cfg.SessionKeys = [][]byte{hk, bk}
		// The fixture's securecookie timestamp is from the day it was
		// written: a lifetime long enough to open it.
		cfg.SessionLifetime = 20 * 365 * 24 * time.Hour
		cfg.IdleTimeout = time.Hour
		cfg.Now = func() time.Time { return now }
	}})
	if h.app.cookieName == f.Name {
		t.Fatalf("the default cookie name is still %s", f.Name)
	}
	b := h.app.newBrowser(t)
	b.jar.SetCookies(mustURL(t, h.app.url), []*http.Cookie{{Name: f.Name, Value: f.CookieValue, Path: "/", Secure: true}})
	r := b.get("/private", "Accept", "application/json")
	if r.status != http.StatusOK || !strings.Contains(r.body, `"alice@example.com"`) {
		t.Fatalf("GET /private with the old cookie: %d %q, want the fixture's user", r.status, r.body)
	}
	moved, deleted := r.setCookie(h.app.cookieName), r.setCookie(f.Name)
	if moved == nil || moved.MaxAge <= 0 || deleted == nil || deleted.MaxAge >= 0 {
		t.Fatalf("the idle-timeout write did not move the session: Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
	if u := b.mustUser(); u.ID != "fixture-sub" {
		t.Errorf("user after the move %+v", u)
	}
	for _, c := range b.jar.Cookies(mustURL(t, h.app.url)) {
		if c.Name == f.Name {
			t.Errorf("the old cookie is still in the jar")
		}
	}
}
