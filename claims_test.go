package pipaauth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// claimsApp is a testApp that keeps claims, with a browser logged in or
// not. Its routes: /login, /callback, /me (the claims named in the query's
// "claim" parameters, as JSON: name to value, absent names left out),
// /token (Token, for refreshes), /admin (RequireUser with rule).
type claimsApp struct {
	provider *pipatest.Server
	app      *testApp
	store    *memStore // nil: cookie mode
	offset   atomic.Int64
	events   eventLog
	logs     syncBuffer
	infos    atomic.Int64 // userinfo answers the provider gave
	client   *http.Client
	noFollow *http.Client
}

// newClaimsApp starts a claimsApp keeping names (with KeepTokens and the
// profile-less default scopes), in store mode when store is not nil. The
// provider signs in user; rule guards /admin (nil: AllowClaim("groups",
// "admins")).
func newClaimsApp(t *testing.T, store *memStore, names []string, user pipatest.User, rule func(pipaauth.User) bool, edit func(*pipaauth.Config)) *claimsApp {
	t.Helper()
	ca := &claimsApp{provider: pipatest.NewServer(), store: store}
	t.Cleanup(ca.provider.Close)
	ca.provider.SetUser(user)
	// PiPA shares the application's clock: refreshed ID tokens are checked
	// for exp like the login's.
	ca.provider.SetClock(func() time.Time { return time.Now().Add(time.Duration(ca.offset.Load())) })
	ca.provider.SetBehavior(pipatest.Behavior{UserInfoHook: func(map[string]any) { ca.infos.Add(1) }})
	ca.app = newTestApp(t, ca.provider, func(c *pipaauth.Config) {
		c.Claims = names
		c.KeepTokens = true
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ca.offset.Load())) }
		c.OnEvent = ca.events.record
		c.Logger = slog.New(slog.NewTextHandler(&ca.logs, nil))
		if store != nil {
			c.SessionStore = store
		}
		if edit != nil {
			edit(c)
		}
	})
	if rule == nil {
		rule = pipaauth.AllowClaim("groups", "admins")
	}
	auth, mux := ca.app.auth, ca.app.mux
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/me", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		out := map[string]json.RawMessage{}
		for _, name := range r.URL.Query()["claim"] {
			var v json.RawMessage
			ok, err := u.Claim(name, &v)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if ok {
				out[name] = v
			}
		}
		json.NewEncoder(w).Encode(out)
	})))
	mux.Handle("/token", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := auth.Token(w, r); err != nil {
			http.Error(w, "token: "+err.Error(), http.StatusUnauthorized)
		}
	})))
	mux.Handle("/admin", auth.RequireUser(rule)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admin page")
	})))
	jar, _ := cookiejar.New(nil)
	ca.client = &http.Client{Jar: jar}
	ca.noFollow = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return ca
}

func (ca *claimsApp) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := ca.client.Get(ca.app.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// login logs in and fails t unless it succeeded.
func (ca *claimsApp) login(t *testing.T) {
	t.Helper()
	if code, body := ca.get(t, "/login?return_to=/me"); code != http.StatusOK {
		t.Fatalf("login: %d %q", code, body)
	}
}

// claims returns the kept claims named, as /me reports them.
func (ca *claimsApp) claims(t *testing.T, names ...string) map[string]any {
	t.Helper()
	q := url.Values{"claim": names}
	resp, err := ca.noFollow.Get(ca.app.srv.URL + "/me?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/me: %d, want 200 (logged in)", resp.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// refresh makes the access token due and refreshes it through Token.
func (ca *claimsApp) refresh(t *testing.T) {
	t.Helper()
	ca.offset.Add(int64(time.Hour))
	if code, body := ca.get(t, "/token"); code != http.StatusOK {
		t.Fatalf("/token: %d %q", code, body)
	}
}

// sessionCookie returns the session cookie's value ("" when none).
func (ca *claimsApp) sessionCookie() string {
	u, _ := url.Parse(ca.app.srv.URL)
	for _, c := range ca.client.Jar.Cookies(u) {
		if c.Name == "pipaauth" {
			return c.Value
		}
	}
	return ""
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func alice(claims, infoClaims map[string]any) pipatest.User {
	return pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true, Claims: claims, UserInfoClaims: infoClaims}
}

func TestClaimsFromIDTokenAndUserInfo(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var store *memStore
			if m.store != nil {
				store = m.store()
			}
			user := alice(
				map[string]any{"name": "Alice Liddell", "secret": "not named", "groups": []string{"admins", "staff"}},
				map[string]any{"preferred_username": "alice", "roles": []string{"reader"}})
			ca := newClaimsApp(t, store, []string{"name", "groups", "preferred_username", "roles", "nickname"}, user, nil, nil)
			ca.login(t)
			got := ca.claims(t, "name", "groups", "preferred_username", "roles", "nickname", "secret", "sub", "email", "email_verified", "auth_time")
			want := `{"groups":["admins","staff"],"name":"Alice Liddell","preferred_username":"alice","roles":["reader"]}`
			if g := jsonOf(t, got); g != want {
				t.Errorf("claims after login = %s, want %s", g, want)
			}
			if n := ca.infos.Load(); n != 1 {
				t.Errorf("userinfo requests = %d, want 1 (the ID token lacks preferred_username, roles, nickname)", n)
			}
			if code, _ := ca.get(t, "/admin"); code != http.StatusOK {
				t.Errorf("/admin for a member of admins: %d, want 200", code)
			}
		})
	}
}

// With every named claim in the ID token, no UserInfo request is made.
func TestClaimsAllInIDTokenNoUserInfo(t *testing.T) {
	ca := newClaimsApp(t, nil, []string{"name"}, alice(map[string]any{"name": "Alice"}, nil), nil, nil)
	ca.login(t)
	if got := ca.claims(t, "name"); got["name"] != "Alice" {
		t.Errorf("name = %v, want Alice", got["name"])
	}
	if n := ca.infos.Load(); n != 0 {
		t.Errorf("userinfo requests = %d, want 0", n)
	}
}

func TestClaimsUserInfoOtherSubRefused(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var store *memStore
			if m.store != nil {
				store = m.store()
			}
			ca := newClaimsApp(t, store, []string{"groups"}, alice(nil, map[string]any{"groups": []string{"admins"}}), nil, nil)
			ca.provider.SetBehavior(pipatest.Behavior{UserInfoWrongSubject: true})
			code, body := ca.get(t, "/login")
			if code != http.StatusBadRequest {
				t.Errorf("login with another sub at UserInfo: %d %q, want 400", code, body)
			}
			if ca.sessionCookie() != "" {
				t.Error("a session cookie was set")
			}
			checkEvents(t, ca.events.take(), want{pipaauth.EventLoginFailed, pipaauth.ReasonUserInfoInvalid, "", false})
		})
	}
}

func TestClaimsFollowRefresh(t *testing.T) {
	names := []string{"name", "groups", "roles"}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var store *memStore
			if m.store != nil {
				store = m.store()
			}
			ca := newClaimsApp(t, store, names, alice(map[string]any{"name": "Alice", "groups": []string{"admins"}}, map[string]any{"roles": "reader"}), nil, nil)
			ca.login(t)
			if code, _ := ca.get(t, "/admin"); code != http.StatusOK {
				t.Fatalf("/admin before: %d, want 200", code)
			}

			// PiPA renames her, drops her from every group (the ID token
			// then has no groups claim) and changes her role at UserInfo.
			ca.provider.AddUser(alice(map[string]any{"name": "Alice L."}, map[string]any{"roles": []string{"writer"}}))
			before := ca.infos.Load()
			ca.refresh(t)
			if got, want := jsonOf(t, ca.claims(t, names...)), `{"name":"Alice L.","roles":["writer"]}`; got != want {
				t.Errorf("claims after a refresh with an ID token = %s, want %s", got, want)
			}
			if n := ca.infos.Load() - before; n != 1 {
				t.Errorf("userinfo requests at the refresh = %d, want 1", n)
			}
			if code, _ := ca.get(t, "/admin"); code != http.StatusForbidden {
				t.Errorf("/admin after losing the group: %d, want 403", code)
			}

			// A refresh without an ID token keeps them all.
			ca.provider.AddUser(alice(map[string]any{"name": "Someone Else", "groups": []string{"admins"}}, nil))
			ca.provider.SetBehavior(pipatest.Behavior{OmitIDToken: true, UserInfoHook: func(map[string]any) { ca.infos.Add(1) }})
			before = ca.infos.Load()
			ca.refresh(t)
			if got, want := jsonOf(t, ca.claims(t, names...)), `{"name":"Alice L.","roles":["writer"]}`; got != want {
				t.Errorf("claims after a refresh without an ID token = %s, want %s", got, want)
			}
			if n := ca.infos.Load() - before; n != 0 {
				t.Errorf("userinfo requests at a refresh without an ID token = %d, want 0", n)
			}
		})
	}
}

func TestClaimsTooLarge(t *testing.T) {
	bigGroups := func(n int) []string {
		var g []string
		for i := range n {
			g = append(g, fmt.Sprintf("a-rather-long-group-name-number-%04d", i))
		}
		return g
	}
	t.Run("cookie refused", func(t *testing.T) {
		ca := newClaimsApp(t, nil, []string{"name", "groups"}, alice(map[string]any{"name": "Alice", "groups": bigGroups(100)}, nil), nil, nil)
		resp, err := ca.noFollow.Get(ca.app.srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		code, body := 0, ""
		for resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
			resp, err = ca.noFollow.Get(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if resp.StatusCode < 300 || resp.StatusCode >= 400 {
				if len(resp.Header.Values("Set-Cookie")) > 0 {
					for _, c := range resp.Cookies() {
						if c.Name == "pipaauth" && c.MaxAge >= 0 && c.Value != "" {
							t.Errorf("the refusal set a session cookie")
						}
					}
				}
			}
		}
		if code != http.StatusBadGateway {
			t.Errorf("status = %d, want 502", code)
		}
		for _, s := range []string{`claim &#34;groups&#34;`, "bytes", "4096", "SessionStore", "Config.Claims"} {
			if !strings.Contains(body, s) {
				t.Errorf("error page lacks %q:\n%s", s, body)
			}
		}
		if ca.sessionCookie() != "" {
			t.Error("a session cookie is set after the refusal")
		}
		checkEvents(t, ca.events.take(), want{pipaauth.EventLoginFailed, pipaauth.ReasonClaimsTooLarge, "", false})
	})
	t.Run("store accepted", func(t *testing.T) {
		groups := bigGroups(100)
		ca := newClaimsApp(t, newMemStore(), []string{"name", "groups"}, alice(map[string]any{"name": "Alice", "groups": groups}, nil), nil, nil)
		ca.login(t)
		got := ca.claims(t, "groups")
		if g, w := jsonOf(t, got["groups"]), jsonOf(t, groups); g != w {
			t.Errorf("groups in store mode = %.80s..., want all %d groups", g, len(groups))
		}
	})
	t.Run("store refused past 64 KiB", func(t *testing.T) {
		ca := newClaimsApp(t, newMemStore(), []string{"groups"}, alice(map[string]any{"groups": bigGroups(2000)}, nil), nil, nil)
		code, body := ca.get(t, "/login")
		if code != http.StatusBadGateway || !strings.Contains(body, "65536") || !strings.Contains(body, "groups") {
			t.Errorf("login with 72 KB of groups in store mode: %d %q, want 502 naming groups and 65536", code, body)
		}
		if n := ca.store.len(); n != 0 {
			t.Errorf("the store holds %d sessions after the refusal, want 0", n)
		}
		checkEvents(t, ca.events.take(), want{pipaauth.EventLoginFailed, pipaauth.ReasonClaimsTooLarge, "", false})
	})
}

func TestClaimsDistributedNotKept(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var store *memStore
			if m.store != nil {
				store = m.store()
			}
			ca := newClaimsApp(t, store, []string{"name", "groups"}, alice(map[string]any{"name": "Alice"}, nil), nil, nil)
			ca.provider.SetBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) {
				// Entra ID's groups overage (OpenID Connect Core 5.6.2).
				c["_claim_names"] = map[string]any{"groups": "src1"}
				c["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.example/v1.0/users/x/getMemberObjects"}}
			}})
			ca.login(t)
			got := ca.claims(t, "name", "groups")
			if _, ok := got["groups"]; ok || got["name"] != "Alice" {
				t.Errorf("claims = %v, want name only", got)
			}
			if !strings.Contains(ca.logs.String(), "distributed or aggregated") || !strings.Contains(ca.logs.String(), "claim=groups") {
				t.Errorf("no warning naming groups in the log:\n%s", ca.logs.String())
			}
			evs := ca.events.take()
			if !slices.ContainsFunc(evs, func(e pipaauth.Event) bool {
				return e.Kind == pipaauth.EventClaimNotKept && e.Claim == "groups" && e.UserID != ""
			}) {
				t.Errorf("events = %+v, want a claim_not_kept naming groups", evs)
			}
			if !slices.ContainsFunc(evs, func(e pipaauth.Event) bool { return e.Kind == pipaauth.EventLogin }) {
				t.Errorf("events = %+v, want a login", evs)
			}
		})
	}
}

func TestAllowClaim(t *testing.T) {
	cases := []struct {
		name   string
		groups any // the user's groups claim; nil: none
		rule   func(pipaauth.User) bool
		want   int
	}{
		{"string match", "admins", pipaauth.AllowClaim("groups", "admins"), http.StatusOK},
		{"string other", "staff", pipaauth.AllowClaim("groups", "admins"), http.StatusForbidden},
		{"string case differs", "Admins", pipaauth.AllowClaim("groups", "admins"), http.StatusForbidden},
		{"array holds it", []string{"staff", "admins"}, pipaauth.AllowClaim("groups", "ops", "admins"), http.StatusOK},
		{"array lacks it", []string{"staff"}, pipaauth.AllowClaim("groups", "admins"), http.StatusForbidden},
		{"empty array", []string{}, pipaauth.AllowClaim("groups", "admins"), http.StatusForbidden},
		{"missing", nil, pipaauth.AllowClaim("groups", "admins"), http.StatusForbidden},
		{"number", 1, pipaauth.AllowClaim("groups", "1"), http.StatusForbidden},
		{"boolean", true, pipaauth.AllowClaim("groups", "true"), http.StatusForbidden},
		{"object", map[string]any{"admins": true}, pipaauth.AllowClaim("groups", "admins"), http.StatusForbidden},
		{"array of numbers", []any{1, nil, map[string]any{"x": "admins"}}, pipaauth.AllowClaim("groups", "1", "admins", ""), http.StatusForbidden},
		{"no values", "admins", pipaauth.AllowClaim("groups"), http.StatusForbidden},
		{"unnamed claim", "admins", pipaauth.AllowClaim("roles", "admins"), http.StatusForbidden},
		{"with AllowEmails, both", "admins", and(pipaauth.AllowClaim("groups", "admins"), pipaauth.AllowEmails("alice@example.com")), http.StatusOK},
		{"with AllowEmails, email fails", "admins", and(pipaauth.AllowClaim("groups", "admins"), pipaauth.AllowEmails("bob@example.org")), http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := map[string]any{"roles": "admins-but-not-named"}
			if c.groups != nil {
				claims["groups"] = c.groups
			}
			ca := newClaimsApp(t, nil, []string{"groups"}, alice(claims, nil), c.rule, nil)
			ca.login(t)
			if code, _ := ca.get(t, "/admin"); code != c.want {
				t.Errorf("/admin: %d, want %d", code, c.want)
			}
		})
	}
}

func and(rules ...func(pipaauth.User) bool) func(pipaauth.User) bool {
	return func(u pipaauth.User) bool {
		for _, r := range rules {
			if !r(u) {
				return false
			}
		}
		return true
	}
}

// AllowClaim under RequireRecentLogin: a member of admins with a stale
// login is sent to PiPA again, a fresh one gets in.
func TestAllowClaimWithRecentLogin(t *testing.T) {
	ca := newClaimsApp(t, nil, []string{"groups"}, alice(map[string]any{"groups": []string{"admins"}}, nil), nil, nil)
	ca.app.mux.Handle("/recent-admin", ca.app.auth.RequireRecentLogin(10*time.Minute)(ca.app.auth.RequireUser(pipaauth.AllowClaim("groups", "admins"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))))
	ca.login(t)
	if code, body := ca.get(t, "/recent-admin"); code != http.StatusOK || body != "ok" {
		t.Errorf("fresh login: %d %q, want 200 ok", code, body)
	}
	ca.offset.Add(int64(20 * time.Minute))
	resp, err := ca.noFollow.Get(ca.app.srv.URL + "/recent-admin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "max_age=600") {
		t.Errorf("stale login: %d to %q, want 302 to PiPA with max_age=600", resp.StatusCode, loc)
	}
}

func TestClaimConfigRefused(t *testing.T) {
	p := pipatest.NewServer()
	t.Cleanup(p.Close)
	for _, c := range []struct {
		name   string
		claims []string
		scopes []string
	}{
		{"sub", []string{"groups", "sub"}, nil},
		{"email", []string{"email"}, nil},
		{"email_verified", []string{"email_verified"}, nil},
		{"auth_time", []string{"auth_time"}, nil},
		{"empty", []string{""}, nil},
		{"control character", []string{"gro\nups"}, nil},
		{"claim names", []string{"_claim_names"}, nil},
		{"no openid", []string{"groups"}, []string{"email"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := pipaauth.New(t.Context(), pipaauth.Config{
				Issuer: p.URL, ClientID: pipatest.DefaultClientID, ClientSecret: pipatest.DefaultClientSecret,
				RedirectURL: "http://127.0.0.1/callback", SessionKeys: newKeys(), InsecureAllowHTTP: true,
				Scopes: c.scopes, Claims: c.claims,
			})
			if !errors.Is(err, pipaauth.ErrConfig) || !strings.Contains(err.Error(), "Claims") {
				t.Errorf("New with Claims %q: %v, want ErrConfig naming Claims", c.claims, err)
			}
		})
	}
}

// Claim on users that have no claims: a User literal, a session without
// claims.
func TestClaimAbsent(t *testing.T) {
	var v any
	if ok, err := (pipaauth.User{ID: "x"}).Claim("groups", &v); ok || err != nil {
		t.Errorf("Claim on a User literal = %v, %v; want false, nil", ok, err)
	}
	ca := newClaimsApp(t, nil, nil, alice(map[string]any{"groups": "admins"}, nil), nil, nil)
	ca.login(t)
	if got := ca.claims(t, "groups"); len(got) != 0 {
		t.Errorf("claims without Config.Claims = %v, want none", got)
	}
	if code, _ := ca.get(t, "/admin"); code != http.StatusForbidden {
		t.Errorf("/admin without Config.Claims: %d, want 403", code)
	}
}

// Claim decodes into the caller's type, and reports a type that does not
// fit as encoding/json's error.
func TestClaimDecodes(t *testing.T) {
	ca := newClaimsApp(t, nil, []string{"name", "groups"}, alice(map[string]any{"name": "Alice", "groups": []string{"a", "b"}}, nil), nil, nil)
	var got []string
	var name string
	var bad int
	var okGroups, okName, okBad bool
	var errBad error
	ca.app.mux.Handle("/decode", ca.app.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		okGroups, _ = u.Claim("groups", &got)
		okName, _ = u.Claim("name", &name)
		okBad, errBad = u.Claim("name", &bad)
	})))
	ca.login(t)
	ca.get(t, "/decode")
	if !okGroups || !slices.Equal(got, []string{"a", "b"}) || !okName || name != "Alice" {
		t.Errorf("groups %v %v, name %v %q; want [a b], Alice", okGroups, got, okName, name)
	}
	var ute *json.UnmarshalTypeError
	if !okBad || !errors.As(errBad, &ute) {
		t.Errorf("Claim(name, *int) = %v, %v; want true and a *json.UnmarshalTypeError", okBad, errBad)
	}
}

// Claims that grow past the cookie at a refresh end the session with the
// reason; in store mode they are kept.
func TestClaimsTooLargeAtRefresh(t *testing.T) {
	var groups []string
	for i := range 100 {
		groups = append(groups, fmt.Sprintf("a-rather-long-group-name-number-%04d", i))
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var store *memStore
			if m.store != nil {
				store = m.store()
			}
			ca := newClaimsApp(t, store, []string{"groups"}, alice(map[string]any{"groups": "admins"}, nil), nil, nil)
			ca.login(t)
			ca.events.take()
			ca.provider.AddUser(alice(map[string]any{"groups": groups}, nil))
			ca.offset.Add(int64(time.Hour))
			code, _ := ca.get(t, "/token")
			if store != nil {
				if code != http.StatusOK {
					t.Fatalf("refresh in store mode: %d, want 200", code)
				}
				if got := ca.claims(t, "groups"); len(got["groups"].([]any)) != len(groups) {
					t.Errorf("groups after the refresh: %d, want %d", len(got["groups"].([]any)), len(groups))
				}
				return
			}
			if code != http.StatusUnauthorized {
				t.Fatalf("refresh with claims past the cookie: %d, want 401 (session ended)", code)
			}
			checkEvents(t, ca.events.take(), want{pipaauth.EventRefreshFailed, pipaauth.ReasonClaimsTooLarge, ca.provider.Subject(pipatest.DefaultClientID, "alice"), false})
			if ca.sessionCookie() != "" {
				t.Error("the session cookie is still set")
			}
		})
	}
}

// A change of Config.Claims takes effect at the user's next refresh (or
// login): a session written with other names keeps working.
func TestClaimsConfigChange(t *testing.T) {
	var cfg pipaauth.Config
	ca := newClaimsApp(t, nil, []string{"name"}, alice(map[string]any{"name": "Alice", "groups": []string{"admins"}}, nil), nil,
		func(c *pipaauth.Config) { cfg = *c })
	ca.login(t)
	cfg.Claims = []string{"groups"}
	auth2, err := pipaauth.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ca.app.mux.Handle("/admin2", auth2.RequireUser(pipaauth.AllowClaim("groups", "admins"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	ca.app.mux.Handle("/token2", auth2.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := auth2.Token(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	})))
	ca.app.mux.Handle("/name2", auth2.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		var name string
		ok, _ := u.Claim("name", &name)
		fmt.Fprint(w, ok)
	})))
	if code, _ := ca.get(t, "/admin2"); code != http.StatusForbidden {
		t.Errorf("/admin2 before the next refresh: %d, want 403 (the session has no groups yet)", code)
	}
	ca.offset.Add(int64(time.Hour))
	if code, body := ca.get(t, "/token2"); code != http.StatusOK {
		t.Fatalf("refresh: %d %q", code, body)
	}
	if code, _ := ca.get(t, "/admin2"); code != http.StatusOK {
		t.Errorf("/admin2 after the refresh: %d, want 200", code)
	}
	if _, body := ca.get(t, "/name2"); body != "false" {
		t.Errorf("name after the refresh without it in Config.Claims: present=%s, want false", body)
	}
}

// At a refresh, a UserInfo answer for another sub ends the session, and a
// claim that comes only as a reference is reported and cleared.
func TestClaimsRefreshRefusals(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var store *memStore
			if m.store != nil {
				store = m.store()
			}
			ca := newClaimsApp(t, store, []string{"groups", "roles"}, alice(map[string]any{"groups": []string{"admins"}}, map[string]any{"roles": "reader"}), nil, nil)
			ca.login(t)
			alice := ca.provider.Subject(pipatest.DefaultClientID, "alice")

			// groups turns into a reference.
			ca.provider.SetBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) {
				delete(c, "groups")
				c["_claim_names"] = map[string]any{"groups": "src1"}
				c["_claim_sources"] = map[string]any{"src1": map[string]any{"JWT": "e30.e30.sig"}}
			}, UserInfoHook: func(info map[string]any) { delete(info, "groups") }})
			ca.events.take()
			ca.refresh(t)
			if got, want := jsonOf(t, ca.claims(t, "groups", "roles")), `{"roles":"reader"}`; got != want {
				t.Errorf("claims after a refresh with groups as a reference = %s, want %s", got, want)
			}
			evs := ca.events.take()
			if !slices.ContainsFunc(evs, func(e pipaauth.Event) bool {
				return e.Kind == pipaauth.EventClaimNotKept && e.Claim == "groups" && e.UserID == alice
			}) {
				t.Errorf("events = %+v, want a claim_not_kept naming groups", evs)
			}

			// UserInfo answers for another sub.
			ca.provider.SetBehavior(pipatest.Behavior{UserInfoWrongSubject: true})
			ca.offset.Add(int64(time.Hour))
			if code, _ := ca.get(t, "/token"); code != http.StatusUnauthorized {
				t.Errorf("refresh with another sub at UserInfo: %d, want 401 (session ended)", code)
			}
			checkEvents(t, ca.events.take(), want{pipaauth.EventRefreshFailed, pipaauth.ReasonUserInfoInvalid, alice, false})
		})
	}
}
