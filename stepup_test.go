package pipaauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// stepUpMaxAge is the maxAge of the harness's RequireRecentLogin routes.
const stepUpMaxAge = 5 * time.Minute

// stepUpHarness is a harness whose provider shares the application's
// clock, so that moving it ages the provider's sign-ins too (max_age).
func stepUpHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, setup{})
	h.provider.SetClock(h.clock.Now)
	return h
}

// staleSession logs b in and moves the clock past the step-up allowance,
// returning the user as logged in.
func staleSession(t *testing.T, h *harness, b *browser) pipaauth.User {
	t.Helper()
	b.login("/private")
	u := b.mustUser()
	h.clock.Advance(stepUpMaxAge + pipaauth.DefaultClockSkew + time.Second)
	return u
}

func TestRequireRecentLoginFreshSessionPasses(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	b.login("/private")
	h.clock.Advance(stepUpMaxAge) // at the limit: still recent
	for _, path := range []string{"/recent", "/recent-then-user", "/user-then-recent"} {
		if r := b.get(path); r.status != http.StatusOK {
			t.Errorf("GET %s with a fresh session: %d, want 200 without a redirect", path, r.status)
		}
	}
}

func TestRequireRecentLoginStepsUp(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/recent", "/recent-then-user", "/user-then-recent"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			t.Parallel()
			h := stepUpHarness(t)
			b := h.app.newBrowser(t)
			before := staleSession(t, h, b)
			auth := b.startLogin(path + "?x=1")
			q := query(t, auth)
			if got := q.Get("max_age"); got != "300" {
				t.Errorf("max_age = %q, want 300 (seconds)", got)
			}
			r := b.finish(auth)
			if r.status != http.StatusSeeOther || r.location() != path+"?x=1" {
				t.Fatalf("step-up callback: %d to %q, want 303 to %s?x=1; errors %v", r.status, r.location(), path, h.app.takeErrors())
			}
			after := b.mustUser()
			if after.ID != before.ID {
				t.Errorf("user changed from %s to %s", before.ID, after.ID)
			}
			if want := h.clock.Now().Unix(); after.AuthTime.Unix() != want {
				t.Errorf("AuthTime = %v, want the new sign-in at %v", after.AuthTime, h.clock.Now())
			}
			if r := b.get(path); r.status != http.StatusOK {
				t.Errorf("GET %s after the step-up: %d, want 200", path, r.status)
			}
		})
	}
}

// A provider that ignores max_age (the old auth_time) or sends no
// auth_time is refused, and the session stays as it was: same user, same
// AuthTime, still logged in, still stale.
func TestRequireRecentLoginRefusesAnOldSignIn(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		behavior pipatest.Behavior
		detail   string // in the logged cause
	}{
		"max_age ignored": {pipatest.Behavior{IgnoreMaxAge: true}, "more than max_age"},
		"no auth_time":    {pipatest.Behavior{ClaimsHook: func(c map[string]any) { delete(c, "auth_time") }}, "has no auth_time"},
		"auth_time 0":     {pipatest.Behavior{IgnoreMaxAge: true, ClaimsHook: func(c map[string]any) { c["auth_time"] = 0 }}, "more than max_age"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := stepUpHarness(t)
			b := h.app.newBrowser(t)
			before := staleSession(t, h, b)
			cookie := b.cookie()
			auth := b.startLogin("/recent")
			h.setBehavior(tt.behavior)
			r := b.finish(auth)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("callback: %d, want 401", r.status)
			}
			errs := h.app.takeErrors()
			if len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrStepUp) {
				t.Fatalf("errors %v, want one wrapping ErrStepUp", errs)
			}
			var e *pipaauth.Error
			if !errors.As(errs[0], &e) || !strings.Contains(e.Reason, "recent sign-in") {
				t.Errorf("reason %q does not say a recent sign-in is needed", e.Reason)
			}
			if !strings.Contains(errs[0].Error(), tt.detail) {
				t.Errorf("cause %q does not say %q", errs[0], tt.detail)
			}
			if b.cookie() != cookie {
				t.Error("the refused step-up changed the session cookie")
			}
			if after := b.mustUser(); after != before {
				t.Errorf("user after the refused step-up %+v, want %+v unchanged", after, before)
			}
			if r := b.get("/recent"); r.status != http.StatusFound {
				t.Errorf("GET /recent after the refused step-up: %d, want 302 (still stale)", r.status)
			}
		})
	}
}

// A step-up never switches accounts: another user at PiPA is refused and
// the session keeps its user.
func TestRequireRecentLoginRefusesAnotherUser(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	before := staleSession(t, h, b)
	auth := b.startLogin("/recent")
	bob := h.provider.Users()[1]
	h.provider.SetUser(bob)
	r := b.finish(auth)
	if r.status != http.StatusForbidden {
		t.Fatalf("callback: %d, want 403", r.status)
	}
	if errs := h.app.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrStepUp) {
		t.Fatalf("errors %v, want one wrapping ErrStepUp", errs)
	}
	if after := b.mustUser(); after != before {
		t.Errorf("user after the refused step-up %+v, want %+v", after, before)
	}
}

// Without a session, a RequireRecentLogin navigation logs in with max_age
// and any user may log in; the new login is recent.
func TestRequireRecentLoginWithoutSession(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	auth := b.startLogin("/recent")
	if got := query(t, auth).Get("max_age"); got != "300" {
		t.Errorf("max_age = %q, want 300", got)
	}
	if r := b.finish(auth); r.status != http.StatusSeeOther || r.location() != "/recent" {
		t.Fatalf("callback: %d to %q, want 303 to /recent", r.status, r.location())
	}
	if r := b.get("/recent"); r.status != http.StatusOK {
		t.Errorf("GET /recent after login: %d, want 200", r.status)
	}
}

// A plain login (LoginHandler, no max_age) with an old sign-in at PiPA
// records that old auth_time: it does not make the session recent.
func TestPlainLoginDoesNotSatisfyRecentLogin(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	staleSession(t, h, b)
	b.login("/login?return_to=/private") // single sign-on: PiPA's session is old
	if r := b.get("/recent"); r.status != http.StatusFound || !strings.Contains(r.location(), "max_age=300") {
		t.Errorf("GET /recent after a plain re-login: %d to %q, want 302 with max_age", r.status, r.location())
	}
}

func TestRequireRecentLoginAPIClients(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	// No session: 401 login_required, as RequireLogin.
	r := b.get("/recent", "Accept", "application/json")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"login_required"`) {
		t.Errorf("no session: %d %s, want 401 login_required", r.status, r.body)
	}
	staleSession(t, h, b)
	r = b.get("/recent", "Accept", "application/json")
	var body struct {
		Error    string `json:"error"`
		LoginURL string `json:"login_url"`
		MaxAge   int64  `json:"max_age"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != http.StatusUnauthorized {
		t.Fatalf("stale session: %d %q (%v), want 401 JSON", r.status, r.body, err)
	}
	if body.Error != "insufficient_user_authentication" || body.MaxAge != 300 || body.LoginURL == "" {
		t.Errorf("stale session body %+v, want insufficient_user_authentication, max_age 300 and a login URL", body)
	}
	if c := r.header.Get("WWW-Authenticate"); !strings.Contains(c, `error="insufficient_user_authentication"`) || !strings.Contains(c, "max_age=300") {
		t.Errorf("WWW-Authenticate %q lacks the step-up error and max_age", c)
	}
	if _, status := b.user(); status != http.StatusOK {
		t.Errorf("the stale session no longer opens RequireLogin pages: %d", status)
	}
}

// Composition: a user RequireUser refuses gets 403 whatever the order,
// before a step-up when RequireUser comes first.
func TestRequireRecentLoginWithRequireUser(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	h.provider.SetUser(h.provider.Users()[1]) // bob: not allowed
	b := h.app.newBrowser(t)
	b.login("/private")
	if r := b.get("/user-then-recent"); r.status != http.StatusForbidden {
		t.Errorf("fresh bob on /user-then-recent: %d, want 403", r.status)
	}
	if r := b.get("/recent-then-user"); r.status != http.StatusForbidden {
		t.Errorf("fresh bob on /recent-then-user: %d, want 403", r.status)
	}
	h.clock.Advance(stepUpMaxAge + pipaauth.DefaultClockSkew + time.Second)
	if r := b.get("/user-then-recent"); r.status != http.StatusForbidden {
		t.Errorf("stale bob on /user-then-recent: %d, want 403 before any step-up", r.status)
	}
	if r := b.get("/recent-then-user"); r.status != http.StatusFound {
		t.Errorf("stale bob on /recent-then-user: %d, want 302 (step-up first)", r.status)
	}
	h.app.takeErrors()
}

func TestRequireRecentLoginWiring(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	for _, maxAge := range []time.Duration{0, -time.Minute, 999 * time.Millisecond} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RequireRecentLogin(%v) did not panic", maxAge)
				}
			}()
			h.app.auth.RequireRecentLogin(maxAge)
		}()
	}
	cfg := h.app.cfg
	cfg.Scopes = []string{"email"}
	auth, err := pipaauth.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "openid") {
			t.Errorf("RequireRecentLogin without the openid scope: panic %v, want one naming openid", p)
		}
	}()
	auth.RequireRecentLogin(time.Minute)
}

// Refused step-ups are login_failed events with their own reasons; a
// successful one is a login.
func TestRequireRecentLoginEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(h *harness)
		want   want
		status int
	}{
		{"old sign-in", func(h *harness) { h.setBehavior(pipatest.Behavior{IgnoreMaxAge: true}) },
			want{pipaauth.EventLoginFailed, pipaauth.ReasonStepUpNotRecent, "", true}, http.StatusUnauthorized},
		{"another user", func(h *harness) { h.provider.SetUser(h.provider.Users()[1]) },
			want{pipaauth.EventLoginFailed, pipaauth.ReasonStepUpOtherUser, "", true}, http.StatusForbidden},
		{"recent sign-in", func(*harness) {}, want{pipaauth.EventLogin, "", "alice", true}, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, log := eventHarness(t, nil)
			h.provider.SetClock(h.clock.Now)
			b := h.app.newBrowser(t)
			staleSession(t, h, b)
			log.take()
			auth := b.startLogin("/recent")
			tt.edit(h)
			if r := b.finish(auth); r.status != tt.status {
				t.Fatalf("callback: %d, want %d", r.status, tt.status)
			}
			w := tt.want
			if w.user != "" {
				w.user = h.subject(w.user)
			}
			checkEvents(t, log.take(), w)
			h.app.takeErrors()
		})
	}
}

// authTimeOnlyWithMaxAge makes the provider behave as OpenID Connect Core 2
// allows: auth_time is REQUIRED only when max_age was asked for (or the
// claim requested), so plain logins carry none. The hook tells the logins
// apart by their nonce, read from the authorization URLs the test visits.
type authTimeOnlyWithMaxAge struct {
	mu         sync.Mutex
	withMaxAge map[string]bool // nonce -> max_age was sent
}

func (p *authTimeOnlyWithMaxAge) saw(t *testing.T, authURL string) {
	q := query(t, authURL)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.withMaxAge[q.Get("nonce")] = q.Has("max_age")
}

func (p *authTimeOnlyWithMaxAge) hook(c map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, _ := c["nonce"].(string); !p.withMaxAge[n] {
		delete(c, "auth_time")
	}
}

// A plain login (LoginHandler) whose ID token has no auth_time (OpenID
// Connect Core 2 requires it only with max_age) does not make a session
// recent: its AuthTime is only the login time, and single sign-on at PiPA
// may have asked nobody for anything. (Found by the security review.)
func TestPlainLoginWithoutAuthTimeIsNotRecent(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	p := &authTimeOnlyWithMaxAge{withMaxAge: map[string]bool{}}
	h.setBehavior(pipatest.Behavior{ClaimsHook: p.hook})
	b := h.app.newBrowser(t)

	// A fresh login, then the session (and PiPA's sign-in) grow stale.
	auth := b.startLogin("/private")
	p.saw(t, auth)
	if r := b.finish(auth); r.status != http.StatusSeeOther {
		t.Fatalf("first login: %d", r.status)
	}
	h.clock.Advance(stepUpMaxAge + 2*time.Minute)

	// The step-up page asks for a recent login: 302 with max_age.
	if r := b.get("/recent"); r.status != http.StatusFound || !strings.Contains(r.location(), "max_age=300") {
		t.Fatalf("GET /recent with a stale session: %d to %q, want a step-up", r.status, r.location())
	}
	// The attacker does not follow it: a plain login, single sign-on at
	// PiPA (no password typed), carrying no auth_time.
	auth = b.startLogin("/login?return_to=/recent")
	p.saw(t, auth)
	if strings.Contains(auth, "max_age") {
		t.Fatalf("plain login carries max_age: %s", auth)
	}
	r := b.finish(auth)
	if r.status != http.StatusSeeOther {
		t.Fatalf("plain login: %d %v", r.status, h.app.takeErrors())
	}
	if r := b.get("/recent"); r.status == http.StatusOK {
		t.Errorf("GET /recent after a plain single-sign-on login without auth_time: 200; the user never re-authenticated (AuthTime %v)", b.mustUser().AuthTime)
	}
}

// An auth_time up to ClockSkew in the future (PiPA's clock ahead) is
// accepted and recorded as the login time, so that a step-up's window is
// maxAge plus one ClockSkew.
func TestFutureAuthTimeIsRecordedAsNow(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["auth_time"] = h.clock.Now().Add(50 * time.Second).Unix() }})
	b := h.app.newBrowser(t)
	b.login("/private")
	if got, want := b.mustUser().AuthTime, h.clock.Now(); !got.Equal(want.Truncate(time.Second)) && got.Unix() != want.Unix() {
		t.Errorf("AuthTime %v, want the login time %v", got, want)
	}
}

// An API client with a stale session follows the 401's login_url: a
// step-up (max_age) through LoginHandler, after which the API call passes.
// A plain login there would get PiPA's old sign-in again (single sign-on)
// and stay stale for ever.
func TestRequireRecentLoginAPIClientFollowsLoginURL(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	staleSession(t, h, b)
	r := b.get("/recent", "Accept", "application/json")
	var body struct {
		LoginURL string `json:"login_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != http.StatusUnauthorized {
		t.Fatalf("stale session: %d %q", r.status, r.body)
	}
	if want := "/login?max_age=300&return_to=%2Frecent"; body.LoginURL != want {
		t.Errorf("login_url %q, want %q", body.LoginURL, want)
	}
	auth := b.startLogin(body.LoginURL)
	if got := query(t, auth).Get("max_age"); got != "300" {
		t.Fatalf("the login_url's login sent max_age %q, want 300", got)
	}
	if r := b.finish(auth); r.status != http.StatusSeeOther || r.location() != "/recent" {
		t.Fatalf("callback: %d to %q; errors %v", r.status, r.location(), h.app.takeErrors())
	}
	if r := b.get("/recent", "Accept", "application/json"); r.status != http.StatusOK {
		t.Errorf("API call after the step-up: %d, want 200", r.status)
	}
}

// LoginHandler's max_age: a step-up for the session's user; malformed
// values are refused.
func TestLoginHandlerMaxAge(t *testing.T) {
	t.Parallel()
	h := stepUpHarness(t)
	b := h.app.newBrowser(t)
	for _, v := range []string{"0", "-5", "1.5", "abc", "0300", "99999999999", "300&max_age=300"} {
		r := b.get("/login?max_age=" + v)
		if r.status != http.StatusBadRequest {
			t.Errorf("max_age=%s: %d, want 400", v, r.status)
		}
	}
	if errs := h.app.takeErrors(); len(errs) != 7 || !errors.Is(errs[0], pipaauth.ErrStepUp) {
		t.Errorf("errors %v, want 7 wrapping ErrStepUp", errs)
	}
	// With a stale session, the step-up must be its user's.
	staleSession(t, h, b)
	auth := b.startLogin("/login?max_age=60")
	h.provider.SetUser(h.provider.Users()[1])
	if r := b.finish(auth); r.status != http.StatusForbidden {
		t.Errorf("step-up through LoginHandler by another user: %d, want 403", r.status)
	}
	if errs := h.app.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrStepUp) {
		t.Errorf("errors %v, want one wrapping ErrStepUp", errs)
	}
}

// Without the openid scope there is no ID token, so no auth_time can prove
// a recent sign-in: a LoginHandler step-up is refused at its callback
// rather than logging in unchecked.
func TestLoginHandlerMaxAgeWithoutOpenID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{configure: func(c *pipaauth.Config) { c.Scopes = []string{"email"} }})
	b := h.app.newBrowser(t)
	if r := b.finish(b.startLogin("/login?max_age=60")); r.status != http.StatusUnauthorized {
		t.Fatalf("callback of a step-up without openid: %d, want 401", r.status)
	}
	if errs := h.app.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrStepUp) {
		t.Errorf("errors %v, want one wrapping ErrStepUp", errs)
	}
	b.mustBeLoggedOut()
}
