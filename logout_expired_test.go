package pipaauth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/memstore"
	"github.com/pipaauth/pipaauth/session"
)

// expiryIdle is the IdleTimeout of the idle-expiry tests.
const expiryIdle = 30 * time.Minute

// expiryStore returns the Config edit of a backend: "cookie", "revocable
// store" (memRevocable), "memstore" (on now) or "gorilla store".
func expiryStore(t *testing.T, mode string, now func() time.Time) func(*pipaauth.Config) {
	switch mode {
	case "revocable store":
		return func(c *pipaauth.Config) { c.SessionStore = newMemRevocable() }
	case "memstore":
		return func(c *pipaauth.Config) { c.SessionStore = memstore.New(memstore.Options{Now: now}) }
	case "gorilla store":
		return storeMode(t)
	}
	return func(*pipaauth.Config) {}
}

// endSessionQuery checks that r is the logout's 303 to PiPA's end-session
// endpoint, that it cleared the session cookie, and returns its query.
func endSessionQuery(t *testing.T, h *harness, r *response) url.Values {
	t.Helper()
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), h.provider.URL+"/end_session?") {
		t.Fatalf("POST /logout: %d to %q, want 303 to PiPA's end_session\n%s", r.status, r.location(), r.body)
	}
	if c := r.setCookie(h.app.cookieName); c == nil || c.MaxAge >= 0 {
		t.Errorf("POST /logout did not delete the session cookie: %v", c)
	}
	return query(t, r.location())
}

// A logout after the session expired (idle timeout, or SessionLifetime
// within ExpiredGrace) sends the expired session's ID token and
// post_logout_redirect_uri: a strict PiPA (Ory Hydra's rule) ends its
// session and sends the browser back to the app. The expired session is
// never logged in, and the logout clears it.
func TestLogoutAfterExpirySendsIDTokenHint(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"cookie", "revocable store", "memstore", "gorilla store"} {
		for _, expiry := range []string{"idle", "absolute"} {
			t.Run(mode+"/"+expiry, func(t *testing.T) {
				t.Parallel()
				var h *harness
				now := func() time.Time { return h.clock.Now() }
				h, ids, home := logoutSetup(t, func(c *pipaauth.Config) {
					expiryStore(t, mode, now)(c)
					if expiry == "idle" {
						c.IdleTimeout = expiryIdle
					}
				})
				b := h.app.newBrowser(t)
				b.login("/private")
				b.mustUser()
				if expiry == "idle" {
					h.clock.Advance(expiryIdle + time.Minute)
				} else {
					h.clock.Advance(pipaauth.DefaultSessionLifetime + session.ExpiredGrace - time.Minute)
				}
				b.mustBeLoggedOut()
				if _, ok := h.app.auth.User(httptestRequest(t, b, "/")); ok {
					t.Error("User reports the expired session as logged in")
				}
				r := b.post("/logout")
				q := endSessionQuery(t, h, r)
				if got, want := q.Get("id_token_hint"), ids.last(); got == "" || got != want {
					t.Errorf("id_token_hint = %.20q…, want the expired session's ID token %.20q…", got, want)
				}
				if q.Get("client_id") != clientID || q.Get("post_logout_redirect_uri") != home {
					t.Errorf("end session query = %v, want client_id %q and post_logout_redirect_uri %q", q, clientID, home)
				}
				if n := h.provider.ActiveSessions("alice"); n != 1 {
					t.Fatalf("alice has %d sessions at PiPA before the end session, want 1", n)
				}
				end := b.get(r.location())
				if end.status != http.StatusFound || end.location() != home {
					t.Errorf("end session: %d to %q, want 302 to %q (the app)\n%s", end.status, end.location(), home, end.body)
				}
				if n := h.provider.ActiveSessions("alice"); n != 0 {
					t.Errorf("alice has %d sessions at PiPA after logout, want 0", n)
				}
				if names := b.cookieNames("/logout"); len(names) != 0 {
					t.Errorf("after logout the browser still sends %v to the logout path", names)
				}
				// The session is gone for good, in the store too: the
				// same logout again has nothing to send.
				again := endSessionQuery(t, h, b.post("/logout"))
				if again.Has("id_token_hint") || again.Has("post_logout_redirect_uri") {
					t.Errorf("a second logout sends %v, want client_id only", again)
				}
			})
		}
	}
}

// httptestRequest is a request to path carrying what b's jar sends there.
func httptestRequest(t *testing.T, b *browser, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.app.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	return req
}

// Past SessionLifetime+ExpiredGrace nothing of the session is used: the
// store has forgotten it (memstore), and a cookie replayed later is not
// taken either (cookie mode; a browser would have dropped it). The logout
// sends client_id only, as main did.
func TestLogoutLongAfterExpirySendsClientIDOnly(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"cookie", "memstore"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var h *harness
			now := func() time.Time { return h.clock.Now() }
			h, _, _ = logoutSetup(t, expiryStore(t, mode, now))
			b := h.app.newBrowser(t)
			b.login("/private")
			h.clock.Advance(pipaauth.DefaultSessionLifetime + session.ExpiredGrace)
			q := endSessionQuery(t, h, b.post("/logout"))
			if q.Has("id_token_hint") || q.Has("post_logout_redirect_uri") || q.Get("client_id") != clientID {
				t.Errorf("end session query = %v, want client_id %q only", q, clientID)
			}
		})
	}
}

// An expired session whose ID token cannot be used goes with client_id
// only, as without an ID token: no hint that is not PiPA's, for this
// client, is ever sent, and the logout still clears the session.
func TestLogoutAfterExpiryDropsUnusableIDToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// logout runs the logout of b's expired session and returns its
		// response.
		logout func(t *testing.T, h *harness, b *browser) *response
	}{
		{"PiPA rotated its keys; an instance that never saw the old key", func(t *testing.T, h *harness, b *browser) *response {
			h.provider.RotateKeys()
			other := h.newApp(setup{configure: func(c *pipaauth.Config) {
				c.SessionKeys = h.app.cfg.SessionKeys
				c.PostLogoutRedirectURL = h.app.cfg.PostLogoutRedirectURL
			}})
			return b.post(other.url + "/logout")
		}},
		{"another client's session (same keys and cookie name)", func(t *testing.T, h *harness, b *browser) *response {
			other := h.newApp(setup{configure: func(c *pipaauth.Config) {
				c.ClientID = "another-client"
				c.CookieName = strings.TrimPrefix(h.app.cookieName, "__Host-")
				c.SessionKeys = h.app.cfg.SessionKeys
				c.PostLogoutRedirectURL = h.app.cfg.PostLogoutRedirectURL
			}})
			return b.post(other.url + "/logout")
		}},
		{"tampered ID token cookie", func(t *testing.T, h *harness, b *browser) *response {
			b.editCookies(t, "/logout", func(c *http.Cookie) bool {
				if !strings.Contains(c.Name, "-idt0") {
					return false
				}
				v := []byte(c.Value)
				v[len(v)/2] ^= 0x01
				c.Value = string(v)
				return true
			})
			return b.post("/logout")
		}},
		{"no ID token cookie", func(t *testing.T, h *harness, b *browser) *response {
			b.editCookies(t, "/logout", func(c *http.Cookie) bool {
				if !strings.Contains(c.Name, "-idt") {
					return false
				}
				c.MaxAge = -1
				return true
			})
			return b.post("/logout")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _, _ := logoutSetup(t, nil)
			b := h.app.newBrowser(t)
			b.login("/private")
			h.clock.Advance(pipaauth.DefaultSessionLifetime + time.Minute)
			r := tt.logout(t, h, b)
			if r.status != http.StatusSeeOther {
				t.Fatalf("POST /logout: %d, want 303\n%s", r.status, r.body)
			}
			q := query(t, r.location())
			if q.Has("id_token_hint") || q.Has("post_logout_redirect_uri") || q.Get("client_id") == "" {
				t.Errorf("end session query = %v, want client_id only", q)
			}
			if c := r.setCookie(h.app.cookieName); c == nil || c.MaxAge >= 0 {
				t.Errorf("POST /logout did not delete the session cookie: %v", c)
			}
		})
	}
}

// editCookies rewrites the cookies b's jar sends to path for which edit
// reports true (a MaxAge below zero deletes one), and fails t unless
// there was one.
func (b *browser) editCookies(t *testing.T, path string, edit func(*http.Cookie) bool) {
	t.Helper()
	u, err := url.Parse(b.app.url + path)
	if err != nil {
		t.Fatal(err)
	}
	var changed []*http.Cookie
	for _, c := range b.jar.Cookies(u) {
		c.Path, c.Secure, c.HttpOnly = path, u.Scheme == "https", true
		if edit(c) {
			changed = append(changed, c)
		}
	}
	if len(changed) == 0 {
		t.Fatalf("no cookie to edit at %s: %v", path, b.cookieNames(path))
	}
	b.jar.SetCookies(u, changed)
}

// A session kept past its SessionLifetime for a logout (ExpiredGrace) is
// not listed as one of the user's sessions.
func TestExpiredSessionNotListed(t *testing.T) {
	t.Parallel()
	var h *harness
	now := func() time.Time { return h.clock.Now() }
	h, _, _ = logoutSetup(t, expiryStore(t, "memstore", now))
	h.provider.SetClock(now) // the second login's ID token is checked on the moved clock
	first := h.app.newBrowser(t)
	first.login("/private")
	h.clock.Advance(pipaauth.DefaultSessionLifetime - 30*time.Minute)
	second := h.app.newBrowser(t)
	second.login("/private")
	user := second.mustUser()
	list, err := h.app.auth.UserSessions(context.Background(), user.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("UserSessions before the first login expired: %d sessions, %v; want 2", len(list), err)
	}
	h.clock.Advance(31 * time.Minute)
	first.mustBeLoggedOut()
	list, err = h.app.auth.UserSessions(context.Background(), user.ID)
	if err != nil || len(list) != 1 {
		t.Errorf("UserSessions after the first login expired: %d sessions, %v; want 1 (the second)", len(list), err)
	}
}
