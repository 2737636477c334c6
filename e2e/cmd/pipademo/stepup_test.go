package main

// /admin needs a recent sign-in (RequireRecentLogin), and the home page's
// button moves the clock of the app and the embedded PiPA ahead so that a
// visitor sees the step-up without waiting.

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/pipatest"
)

// recentRule is what /admin says after a sign-in seconds ago.
var recentRule = regexp.MustCompile(`^This page needs a sign-in at PiPA within the last 5 minutes\. You signed in [0-9]+s ago; once that is more than 5 minutes \(plus 1 minute allowed for clock differences\), opening this page sends you to PiPA to sign in again\.$`)

// ruleOf returns the text of the page's step-up-rule paragraph.
func ruleOf(t *testing.T, r response) string {
	t.Helper()
	m := regexp.MustCompile(`<p class="notice" id="step-up-rule">([^<]*)</p>`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("%s: no step-up-rule on the page:\n%s", r.url, r.body)
	}
	return m[1]
}

// authTimeOf returns the time in the page's <time id="auth-time">.
func authTimeOf(t *testing.T, r response) time.Time {
	t.Helper()
	m := regexp.MustCompile(`<time id="auth-time" datetime="([^"]*)">`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("%s: no auth-time on the page:\n%s", r.url, r.body)
	}
	at, err := time.Parse(time.RFC3339, m[1])
	if err != nil {
		t.Fatalf("%s: auth-time %q: %v", r.url, m[1], err)
	}
	return at
}

// advanceClock presses the home page's "Move the clock ahead" button.
func advanceClock(t *testing.T, c *http.Client, srv string) response {
	t.Helper()
	r := do(t, c, http.MethodPost, srv+clockPath, http.Header{"Origin": {srv}, "Sec-Fetch-Site": {"same-origin"}})
	if r.status != http.StatusOK || r.url != srv+"/" {
		t.Fatalf("POST %s: status %d at %s, want 200 at /:\n%s", clockPath, r.status, r.url, r.body)
	}
	return r
}

// recordAuthorize makes c record the query of every request to PiPA's
// authorization endpoint it follows a redirect to.
func recordAuthorize(c *http.Client, issuer string) *[]url.Values {
	var seen []url.Values
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), issuer+"/authorize?") {
			seen = append(seen, req.URL.Query())
		}
		return nil
	}
	return &seen
}

func TestAdminStepUp(t *testing.T) {
	d, srv := startDemo(t, false)
	c := newBrowser(t)
	authorize := recordAuthorize(c, d.Provider.URL)

	// A fresh login opens /admin, which says when the user signed in and
	// what it needs.
	r := login(t, c, srv, "/admin")
	wantContains(t, r, "Welcome, alice@example.com.")
	if got := ruleOf(t, r); !recentRule.MatchString(got) {
		t.Errorf("/admin says %q, want it to match %s", got, recentRule)
	}
	first := authTimeOf(t, r)
	if age := time.Since(first); age < -time.Second || age > time.Minute {
		t.Errorf("auth time %v is %v from now, want about now", first, age)
	}
	if len(*authorize) != 1 || (*authorize)[0].Has("max_age") {
		t.Errorf("the first login sent %v, want one authorization request without max_age", *authorize)
	}

	// Ten minutes later (by the demo's clock) /admin wants a new sign-in:
	// PiPA is asked with max_age, signs the user in again, and the page
	// shows the new time.
	r = advanceClock(t, c, srv.URL)
	wantContains(t, r, `id="clock-ahead"`, "is 10 minutes ahead of this machine's")
	if r := get(t, c, srv.URL+"/"); !regexp.MustCompile(`UTC \(10m[0-9]+s ago\)</time>`).MatchString(r.body) {
		t.Errorf("home page after moving the clock does not say the sign-in was 10 minutes ago:\n%s", r.body)
	}
	*authorize = nil
	r = get(t, c, srv.URL+"/admin")
	if r.status != http.StatusOK || r.url != srv.URL+"/admin" {
		t.Fatalf("stale /admin: status %d at %s, want 200 at /admin:\n%s", r.status, r.url, r.body)
	}
	if len(*authorize) != 1 || (*authorize)[0].Get("max_age") != "300" {
		t.Fatalf("stale /admin sent %v, want one authorization request with max_age=300", *authorize)
	}
	wantContains(t, r, "Welcome, alice@example.com.")
	if got := ruleOf(t, r); !recentRule.MatchString(got) {
		t.Errorf("/admin after the step-up says %q, want it to match %s", got, recentRule)
	}
	if second := authTimeOf(t, r); second.Sub(first) < clockStep {
		t.Errorf("after the step-up the auth time is %v, want at least %v after the first %v", second, clockStep, first)
	}

	// A fresh sign-in passes without going to PiPA.
	*authorize = nil
	if r := get(t, c, srv.URL+"/admin"); r.status != http.StatusOK || len(*authorize) != 0 {
		t.Errorf("fresh /admin: status %d after %d authorization requests, want 200 after none", r.status, len(*authorize))
	}

	// An API client with a stale session gets 401 naming the step-up.
	advanceClock(t, c, srv.URL)
	r = getJSON(t, c, srv.URL+"/admin")
	if r.status != http.StatusUnauthorized {
		t.Fatalf("stale /admin as JSON: status %d, want 401:\n%s", r.status, r.body)
	}
	wantContains(t, r, `"error":"insufficient_user_authentication"`, `"max_age":300`)
	if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_user_authentication"`) || !strings.Contains(h, "max_age=300") {
		t.Errorf("WWW-Authenticate %q, want insufficient_user_authentication and max_age=300", h)
	}
}

// A refused step-up: a clear page, a "Try again" for /admin, the session
// as it was, and the reason counted. PiPA either ignores max_age (answers
// with the old auth_time) or signs in another user.
func TestAdminStepUpRefused(t *testing.T) {
	for _, tt := range []struct {
		name     string
		behavior pipatest.Behavior
		user     *pipatest.User // PiPA signs in this user at the step-up
		status   int
		message  string
		reason   string
	}{
		{"max_age ignored", pipatest.Behavior{IgnoreMaxAge: true}, nil,
			http.StatusUnauthorized, "PiPA did not confirm a recent sign-in, which this page needs.", "step_up_not_recent"},
		{"another user", pipatest.Behavior{}, &pipatest.User{Name: "carol", Email: "alice@example.com", EmailVerified: true, ShareEmail: true},
			http.StatusForbidden, "You signed in at PiPA as another user than the one logged in here. To switch accounts, log out first.", "step_up_other_user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, srv := startDemo(t, false)
			c := newBrowser(t)
			// Logged in from the home page, so that "Try again" can only
			// know /admin from the step-up's start.
			first := authTimeOf(t, login(t, c, srv, "/"))
			d.Provider.SetBehavior(tt.behavior)
			if tt.user != nil {
				d.Provider.SetUser(*tt.user)
			}
			advanceClock(t, c, srv.URL)

			r := get(t, c, srv.URL+"/admin")
			if r.status != tt.status || !strings.HasPrefix(r.url, srv.URL+"/callback?") {
				t.Fatalf("refused step-up: status %d at %s, want %d at /callback:\n%s", r.status, r.url, tt.status, r.body)
			}
			wantContains(t, r, "The new sign-in was not accepted", tt.message,
				"You are still logged in as alice@example.com, as before", `id="try-again" href="/login?return_to=%2Fadmin">Try again</a>`)
			wantNotContains(t, r, "pipaauth:", "auth_time is", "Welcome")

			r = get(t, c, srv.URL+"/")
			wantContains(t, r, "You are logged in.", d.Provider.Subject(demoClientID, "alice"))
			if got := authTimeOf(t, r); !got.Equal(first) {
				t.Errorf("after the refused step-up the auth time is %v, want the first login's %v", got, first)
			}
			wantContains(t, get(t, c, srv.URL+"/metrics"), `pipademo_auth_events_total{kind="login_failed",reason="`+tt.reason+`"} 1`)
		})
	}
}

// bob is not an admin: a stale session gets 403 at once, without a new
// sign-in for a page he may not see.
func TestAdminStaleNonAdminForbidden(t *testing.T) {
	d, srv := startDemo(t, false)
	d.Provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true})
	c := newBrowser(t)
	login(t, c, srv, "/")
	advanceClock(t, c, srv.URL)
	authorize := recordAuthorize(c, d.Provider.URL)
	r := get(t, c, srv.URL+"/admin")
	if r.status != http.StatusForbidden || len(*authorize) != 0 {
		t.Errorf("stale /admin as bob: status %d after %d authorization requests, want 403 after none", r.status, len(*authorize))
	}
}

func TestAdvanceClock(t *testing.T) {
	d, srv := startDemo(t, false)
	c := newBrowser(t)

	r := get(t, c, srv.URL+"/")
	wantContains(t, r, `<form method="post" action="/demo/clock"><button type="submit" id="advance-clock">Move the clock 10 minutes ahead</button></form>`)
	wantNotContains(t, r, `id="clock-ahead"`)

	// A POST from another site is refused and moves nothing.
	r = do(t, c, http.MethodPost, srv.URL+clockPath, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	if r.status != http.StatusForbidden {
		t.Errorf("cross-site POST %s: status %d, want 403", clockPath, r.status)
	}
	wantContains(t, r, "Move the clock with the button on the home page of the demo.")
	if ahead := d.clock.Ahead(); ahead != 0 {
		t.Errorf("after a cross-site POST the clock is %v ahead, want 0", ahead)
	}
	// GET moves nothing either.
	if r := get(t, c, srv.URL+clockPath); r.status != http.StatusNotFound || d.clock.Ahead() != 0 {
		t.Errorf("GET %s: status %d, clock %v ahead; want 404 and 0", clockPath, r.status, d.clock.Ahead())
	}

	advanceClock(t, c, srv.URL)
	advanceClock(t, c, srv.URL)
	if ahead := d.clock.Ahead(); ahead != 2*clockStep {
		t.Errorf("after two clicks the clock is %v ahead, want %v", ahead, 2*clockStep)
	}
	// (That the provider shares this clock is what TestAdminStepUp needs:
	// without it PiPA would answer max_age with the old auth_time.)
	if ahead := time.Until(d.clock.Now()); ahead < 2*clockStep-time.Second {
		t.Errorf("demo clock %v ahead of time.Now, want 20 minutes", ahead)
	}
}

func TestDemoClock(t *testing.T) {
	var c demoClock
	c.Advance(-time.Hour)
	c.Advance(0)
	if c.Ahead() != 0 {
		t.Errorf("Advance(<= 0) moved the clock to %v ahead", c.Ahead())
	}
	c.Advance(time.Minute)
	if d := time.Until(c.Now()); d < 59*time.Second || d > 61*time.Second {
		t.Errorf("one minute ahead: Now is %v from time.Now", d)
	}
}

// With a real PiPA the demo cannot move PiPA's clock: no button, no note.
func TestHomeWithoutClock(t *testing.T) {
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, "home", pageData{Title: "pipademo", AdminMaxAge: minutes(adminMaxAge)}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, clockPath) || strings.Contains(s, "clock-ahead") || !strings.Contains(s, "within the last 5 minutes") {
		t.Errorf("home page without a clock:\n%s", s)
	}
}
