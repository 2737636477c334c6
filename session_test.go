package pipaauth_test

// Full-flow tests of the session and its cookie (see harness_test.go for the
// harness): replaced at login, tampered with, sealed with other or rotated
// keys, its lifetime, idle timeout and size.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestLoginReplacesSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	b.login("/private")
	if u := b.mustUser(); u.Email != "alice@example.com" {
		t.Fatalf("first login: user %+v, want alice", u)
	}
	// Bob does not share his email: nothing of alice's may survive.
	h.provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: false})
	r := b.finish(b.startLogin("/login?return_to=%2Fprivate"))
	if r.status != http.StatusSeeOther || r.location() != "/private" {
		t.Fatalf("second login: %d to %q, want 303 to /private; errors %v", r.status, r.location(), h.app.takeErrors())
	}
	want := pipaauth.User{ID: h.subject("bob")}
	if u := withoutAuthTime(t, b.mustUser()); u != want {
		t.Errorf("after logging in as bob the user is %+v, want %+v", u, want)
	}
}

func TestSessionCookieChangesAtLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	// Before the first login there is no session cookie at all: nothing a
	// site could plant and have logged in later.
	auth := b.startLogin("/private")
	u, _ := url.Parse(h.app.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == h.app.cookieName {
			t.Fatalf("a login start set the session cookie")
		}
	}
	if r := b.finish(auth); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	pre := b.cookie()
	auth = b.startLogin("/login?return_to=%2Fprivate")
	if b.cookie() != pre {
		t.Fatalf("starting a login changed the session cookie")
	}
	h.clock.Advance(time.Second)
	if r := b.finish(auth); r.status != http.StatusSeeOther {
		t.Fatalf("second login: %d", r.status)
	}
	post := b.cookie()
	if pre == post {
		t.Fatalf("the session cookie did not change at the second login")
	}
	if r := h.app.newBrowser(t).get("/private", "Accept", "application/json", "Cookie", h.app.cookieName+"="+post); r.status != http.StatusOK {
		t.Errorf("the post-login cookie gets %d, want 200", r.status)
	}
}

func TestTamperedCookie(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	b.login("/private")
	value := b.cookie()
	// flip changes the top bit of the base64 digit at i, so that the
	// decoded bytes change even where low bits are padding.
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	flip := func(i int) string {
		v := []byte(value)
		if d := strings.IndexByte(digits, v[i]); d >= 0 {
			v[i] = digits[d^0x20]
		} else {
			v[i] = 'A'
		}
		return string(v)
	}
	tests := map[string]string{
		"first character":  flip(0),
		"middle character": flip(len(value) / 2),
		"last character":   flip(len(value) - 1),
		"truncated":        value[:len(value)-4],
		"extended":         value + "AAAA",
		"garbage":          "not-a-session",
	}
	for name, tampered := range tests {
		t.Run(name, func(t *testing.T) {
			cookie := h.app.cookieName + "=" + tampered
			nav := h.app.newBrowser(t).get("/private", "Cookie", cookie)
			if nav.status != http.StatusFound || !strings.HasPrefix(nav.location(), h.provider.URL+"/authorize?") {
				t.Errorf("navigation with a tampered cookie: %d to %q, want 302 to the provider", nav.status, nav.location())
			}
			if c := nav.setCookie(h.app.cookieName); c != nil {
				t.Errorf("navigation with a tampered cookie sets %v, want the session cookie left alone (a login replaces it)", c)
			}
			if len(nav.attemptCookies(h.app.cookieName)) != 1 {
				t.Errorf("navigation with a tampered cookie sets %q, want one attempt cookie", nav.header.Values("Set-Cookie"))
			}
			api := h.app.newBrowser(t).get("/private", "Cookie", cookie, "Accept", "application/json")
			if api.status != http.StatusUnauthorized {
				t.Errorf("API request with a tampered cookie: %d, want 401", api.status)
			}
			// Never cleared on a 401: the request may have been sent before a
			// login and answered after it.
			if sc := api.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("API request with a tampered cookie sets %q, want no cookie", sc)
			}
		})
	}
}

func TestCookieSealedWithOtherKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	other := h.newApp(setup{}) // fresh SessionKeys
	b := h.app.newBrowser(t)
	b.login("/private")
	cookie := h.app.cookieName + "=" + b.cookie()
	if r := other.newBrowser(t).get("/private", "Cookie", cookie, "Accept", "application/json"); r.status != http.StatusUnauthorized {
		t.Errorf("another Auth's cookie on an API request: %d, want 401", r.status)
	}
	if r := other.newBrowser(t).get("/private", "Cookie", cookie); r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
		t.Errorf("another Auth's cookie on a navigation: %d to %q, want 302 to the provider", r.status, r.location())
	}
	b.mustUser() // still fine where it belongs
}

func TestSessionLifetime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	b.login("/private")
	h.clock.Advance(12*time.Hour - time.Second)
	b.mustUser()
	h.clock.Advance(2 * time.Second)
	if r := b.get("/private"); r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
		t.Errorf("navigation 12h+1s after login: %d to %q, want 302 to the provider", r.status, r.location())
	}
	b.mustBeLoggedOut()
}

func TestSessionKeyRotation(t *testing.T) {
	t.Parallel()
	oldKeys, newPair := newKeys(), newKeys()
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.SessionKeys = oldKeys }})
	rotated := h.newApp(setup{configure: func(cfg *pipaauth.Config) { cfg.SessionKeys = append(slices.Clone(newPair), oldKeys...) }})
	newOnly := h.newApp(setup{configure: func(cfg *pipaauth.Config) { cfg.SessionKeys = newPair }})
	b := h.app.newBrowser(t)
	b.login("/private")
	cookie := h.app.cookieName + "=" + b.cookie()
	r := rotated.newBrowser(t).get("/private", "Cookie", cookie, "Accept", "application/json")
	if r.status != http.StatusOK {
		t.Fatalf("an Auth with {new, old} keys answers %d to a cookie sealed with the old keys, want 200", r.status)
	}
	var u pipaauth.User
	json.Unmarshal([]byte(r.body), &u)
	if u.ID != h.subject("alice") {
		t.Errorf("user = %+v, want alice", u)
	}
	if r := newOnly.newBrowser(t).get("/private", "Cookie", cookie, "Accept", "application/json"); r.status != http.StatusUnauthorized {
		t.Errorf("an Auth with only the new keys answers %d, want 401", r.status)
	}
}

func TestCookieSizeWithLongEmailAndPendingLogins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	local := strings.Repeat("a", 64)
	domain := strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 53) + ".example"
	email := local + "@" + domain
	if len(email) != 254 {
		t.Fatalf("test email is %d characters, want 254", len(email))
	}
	h.provider.SetUser(pipatest.User{Name: "long", Email: email, EmailVerified: true, ShareEmail: true})
	b := h.app.newBrowser(t)
	b.login("/private")
	// Four pending logins with 256-byte return paths: each has a cookie of
	// its own, so the session cookie does not grow with them.
	var auths, paths []string
	for i := range 4 {
		p := fmt.Sprintf("/private?tab=%d&pad=", i)
		p += strings.Repeat("x", 256-len(p))
		paths = append(paths, p)
		auths = append(auths, b.startLogin("/login?return_to="+url.QueryEscape(p)))
	}
	r := b.finish(auths[len(auths)-1])
	if r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
	}
	if got := r.location(); got != paths[len(paths)-1] {
		t.Errorf("landed on %q, want %q", got, paths[len(paths)-1])
	}
	c := r.setCookie(h.app.cookieName)
	if c == nil {
		t.Fatalf("no session cookie set")
	}
	t.Logf("session cookie with a 254-byte email and %d pending logins: %d bytes", len(auths)-1, len(c.String()))
	if u := b.mustUser(); u.Email != email {
		t.Errorf("email = %q, want %q", u.Email, email)
	}
	// The other three still complete.
	for i := range 3 {
		if r := b.finish(auths[i]); r.status != http.StatusSeeOther || r.location() != paths[i] {
			t.Errorf("login %d: %d to %q, want 303 to %q", i, r.status, r.location(), paths[i])
		}
	}
	// (Every Set-Cookie of the test is checked against 4096 bytes by the harness.)
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.IdleTimeout = 30 * time.Minute }})
	b := h.app.newBrowser(t)
	b.login("/private")
	// Requests every 20 minutes keep the session alive well past 30 minutes.
	for i := range 4 {
		h.clock.Advance(20 * time.Minute)
		if _, status := b.user(); status != http.StatusOK {
			t.Fatalf("request %d, %v after login: %d, want 200 (the idle timeout slides)", i, time.Duration(i+1)*20*time.Minute, status)
		}
	}
	h.clock.Advance(30*time.Minute + time.Second)
	b.mustBeLoggedOut()
}
