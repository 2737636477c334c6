package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Alice signs in from two browsers; the first ends the second's session
// from the Signed in on page, which the second then no longer has; after a
// new sign-in, "Sign out all other devices" does the same.
func TestBrowserSignedInOn(t *testing.T) {
	browser := startChromium(t)
	d, srv := startDemo(t, true)
	app, issuer := srv.URL, d.Provider.URL

	signIn := func(t *testing.T, ctx context.Context) {
		t.Helper()
		step(t, ctx, "opening /sessions", chromedp.Navigate(app+"/sessions"),
			chromedp.WaitVisible(chromedp.CSS("#approve, #sessions")))
		// PiPA asks again, or signs in at once with its own session in
		// this browser.
		if loc := run1(t, ctx, "location", chromedp.Location()); strings.HasPrefix(loc, issuer) {
			wantConsentPage(t, ctx, issuer)
			approve(t, ctx, "alice", true)
		}
		step(t, ctx, "waiting for the Signed in on page", chromedp.WaitVisible(chromedp.ID("sessions")))
		wantLocation(t, ctx, app+"/sessions")
	}
	rows := func(t *testing.T, ctx context.Context) int {
		t.Helper()
		return run1(t, ctx, "counting sessions", chromedp.Evaluate[int]("document.querySelectorAll('tr.session').length"))
	}
	loggedIn := func(t *testing.T, ctx context.Context) bool {
		t.Helper()
		step(t, ctx, "opening /", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.ID("status")))
		return text(t, ctx, "status") == "You are logged in."
	}

	laptop := newBrowserContext(t, browser)
	phone := newBrowserContext(t, browser)
	signIn(t, laptop)
	signIn(t, phone)
	step(t, laptop, "reloading /sessions", chromedp.Navigate(app+"/sessions"), chromedp.WaitVisible(chromedp.ID("sessions")))
	if n := rows(t, laptop); n != 2 {
		t.Fatalf("the laptop lists %d sessions, want 2", n)
	}
	if got := text(t, laptop, "this-device"); got != "(this device)" {
		t.Errorf("the current session is marked %q", got)
	}
	if got := run1(t, laptop, "reading the other device", chromedp.Evaluate[string]("document.querySelector('tr.session:not(.current) .device').textContent")); got != "Chrome (headless) on Linux" {
		t.Errorf("the other device reads %q, want Chrome (headless) on Linux", got)
	}
	step(t, laptop, "signing the phone out", chromedp.Click(chromedp.CSS("button.end-session")), chromedp.WaitVisible(chromedp.ID("ended")))
	if got := text(t, laptop, "ended"); got != "Signed out 1 device." {
		t.Errorf("the page says %q", got)
	}
	if n := rows(t, laptop); n != 1 {
		t.Errorf("the laptop lists %d sessions after ending the phone's, want 1", n)
	}
	if loggedIn(t, phone) {
		t.Error("the phone is still logged in after the laptop signed it out")
	}
	if !loggedIn(t, laptop) {
		t.Error("the laptop was logged out")
	}

	// Sign in on the phone again; "Sign out all other devices".
	signIn(t, phone)
	step(t, laptop, "reloading /sessions", chromedp.Navigate(app+"/sessions"), chromedp.WaitVisible(chromedp.ID("end-others")))
	step(t, laptop, "signing out all other devices", chromedp.Click(chromedp.ID("end-others")), chromedp.WaitVisible(chromedp.ID("ended")))
	if got := text(t, laptop, "ended"); got != "Signed out 1 device." {
		t.Errorf("the page says %q", got)
	}
	if loggedIn(t, phone) {
		t.Error("the phone is still logged in after Sign out all other devices")
	}
	if !loggedIn(t, laptop) {
		t.Error("the laptop was logged out")
	}
}
