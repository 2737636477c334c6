package main

// End-to-end tests in a real browser: Debian's Chromium, headless, driven
// with chromedp over the DevTools protocol. They skip when Chromium is not
// installed, and fail instead when PIPAAUTH_REQUIRE_BROWSER=1 (as in CI).

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

var updateDocs = flag.Bool("update-docs", false, "write the browser tests' screenshot of the home page, logged in as alice, to docs/demo.png")

const (
	browserStartTimeout = 30 * time.Second
	scenarioTimeout     = 60 * time.Second
	consentTitle        = "PiPA — sign in"
)

// browserUnavailable skips the test, or fails it when
// PIPAAUTH_REQUIRE_BROWSER=1.
func browserUnavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("PIPAAUTH_REQUIRE_BROWSER") == "1" {
		t.Fatalf("PIPAAUTH_REQUIRE_BROWSER=1: "+format, args...)
	}
	t.Skipf(format, args...)
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startChromium starts a headless Chromium with a fresh profile and returns
// a context for its first tab. The browser closes when the test ends.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path := findChromium()
	if path == "" {
		browserUnavailable(t, "Chromium not found: install it with `apt-get install chromium` (Debian) to run the browser tests")
	}
	profile := t.TempDir() // removed after the browser has exited (cleanups run last-in first-out)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Keep tabs in the background as fast as the one in front.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1000, 760),
	)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)

	// The first Do starts the browser and binds its life to browserCtx, so
	// it must not get a timeout of its own: watch it from here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(browserCtx) }()
	select {
	case err := <-started:
		if err != nil {
			browserUnavailable(t, "Chromium (%s) could not start: %v", path, err)
		}
	case <-time.After(browserStartTimeout):
		cancelBrowser()
		browserUnavailable(t, "Chromium (%s) did not start within %v", path, browserStartTimeout)
	}
	return browserCtx
}

// newBrowserContext returns a tab in a new browser context (its own cookie
// jar, like a fresh incognito window), closed when the test ends and cut
// short after scenarioTimeout.
func newBrowserContext(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tctx, cancelTimeout := context.WithTimeout(browser, scenarioTimeout)
	t.Cleanup(cancelTimeout)
	ctx, cancel := chromedp.NewContext(tctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return ctx
}

// screenshots saves full-page screenshots of the flow, numbered in order.
type screenshots struct {
	dir string
	n   int
}

func (s *screenshots) take(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return nil
	}
	s.n++
	file := filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
	return png
}

// step runs actions and fails the test, with what the tab shows, when one
// fails.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v (the tab is at %s)", what, err, loc)
	}
}

func run1[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v (the tab is at %s)", what, err, loc)
	}
	return v
}

// wantConsentPage checks that the tab shows PiPA's sign-in page.
func wantConsentPage(t *testing.T, ctx context.Context, issuer string) {
	t.Helper()
	step(t, ctx, "waiting for the consent page", chromedp.WaitVisible(chromedp.ID("approve")))
	if title := run1(t, ctx, "title", chromedp.Title()); title != consentTitle {
		t.Errorf("title %q, want %q", title, consentTitle)
	}
	if loc := run1(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, issuer+"/authorize?") {
		t.Errorf("consent page at %s, want %s/authorize", loc, issuer)
	}
}

// approve picks the user, sets the share-email checkbox and approves.
func approve(t *testing.T, ctx context.Context, user string, share bool) {
	t.Helper()
	step(t, ctx, "choosing "+user, chromedp.Click(chromedp.ID("user-"+user)))
	checked := run1(t, ctx, "reading share-email", chromedp.JavascriptAttribute[bool](chromedp.ID("share-email"), "checked"))
	if !checked {
		t.Error("share-email is not checked by default")
	}
	if !share {
		step(t, ctx, "unchecking share-email", chromedp.Click(chromedp.ID("share-email")))
		if run1(t, ctx, "reading share-email", chromedp.JavascriptAttribute[bool](chromedp.ID("share-email"), "checked")) {
			t.Fatal("share-email still checked after a click")
		}
	}
	step(t, ctx, "approving", chromedp.Click(chromedp.ID("approve")))
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return strings.TrimSpace(run1(t, ctx, "reading #"+id, chromedp.Text(chromedp.ID(id))))
}

func wantLocation(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	if loc := run1(t, ctx, "location", chromedp.Location()); loc != want {
		t.Errorf("the tab is at %s, want %s", loc, want)
	}
}

// authorizeQuery returns the query of PiPA's authorization request the tab
// shows.
func authorizeQuery(t *testing.T, ctx context.Context) url.Values {
	t.Helper()
	u, err := url.Parse(run1(t, ctx, "location", chromedp.Location()))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// authTime reads when the page says the user signed in at PiPA.
func authTime(t *testing.T, ctx context.Context) time.Time {
	t.Helper()
	attr := run1(t, ctx, "reading #auth-time", chromedp.AttributeValue(chromedp.ID("auth-time"), "datetime"))
	at, err := time.Parse(time.RFC3339, attr.Value)
	if err != nil {
		t.Fatalf("#auth-time datetime %+v: %v", attr, err)
	}
	return at
}

func TestBrowser(t *testing.T) {
	begin := time.Now()
	browser := startChromium(t)
	d, srv := startDemo(t, true)
	app, issuer := srv.URL, d.Provider.URL
	aliceID := d.Provider.Subject(demoClientID, "alice")

	dir, err := os.MkdirTemp("", "pipademo-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of the browser flows: %s", dir)
	shots := &screenshots{dir: dir}

	t.Run("admin as alice sharing email", func(t *testing.T) {
		ctx := newBrowserContext(t, browser)
		step(t, ctx, "opening /admin", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, ctx, issuer)
		shots.take(t, ctx, "consent")
		approve(t, ctx, "alice", true)
		step(t, ctx, "waiting for /admin", chromedp.WaitVisible(chromedp.ID("welcome")))
		wantLocation(t, ctx, app+"/admin")
		if got, want := text(t, ctx, "welcome"), "Welcome, alice@example.com. Only admins see this page."; got != want {
			t.Errorf("admin page says %q, want %q", got, want)
		}
		if got := text(t, ctx, "user-email"); got != "alice@example.com" {
			t.Errorf("email %q, want alice@example.com", got)
		}
		shots.take(t, ctx, "admin-alice")

		// /me shows the name and groups PiPA sent (Config.Claims).
		step(t, ctx, "opening /me", chromedp.Navigate(app+"/me"), chromedp.WaitVisible(chromedp.ID("user-groups")))
		if name, groups := text(t, ctx, "user-name"), text(t, ctx, "user-groups"); name != "Alice Liddell" || groups != "admins, staff" {
			t.Errorf("/me: name %q, groups %q; want Alice Liddell, admins, staff", name, groups)
		}
		shots.take(t, ctx, "me-alice")

		step(t, ctx, "opening /", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.ID("user-id")))
		if got := text(t, ctx, "user-email"); got != "alice@example.com" {
			t.Errorf("home page: email %q, want alice@example.com", got)
		}
		png := shots.take(t, ctx, "home-alice")
		if *updateDocs && png != nil {
			if err := os.WriteFile(filepath.Join("..", "..", "..", "docs", "demo.png"), png, 0o644); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("approve without sharing email", func(t *testing.T) {
		ctx := newBrowserContext(t, browser)
		step(t, ctx, "opening /", chromedp.Navigate(app+"/"))
		if got := text(t, ctx, "status"); got != "You are not logged in." {
			t.Errorf("home page says %q", got)
		}
		shots.take(t, ctx, "home-logged-out")
		step(t, ctx, "clicking Log in", chromedp.Click(chromedp.ID("login")))
		wantConsentPage(t, ctx, issuer)
		approve(t, ctx, "alice", false)
		step(t, ctx, "waiting for the home page", chromedp.WaitVisible(chromedp.ID("user-id")))
		wantLocation(t, ctx, app+"/")
		if got := text(t, ctx, "status"); got != "You are logged in." {
			t.Errorf("home page says %q", got)
		}
		if got := text(t, ctx, "user-email"); got != "(email not shared)" {
			t.Errorf("email %q, want (email not shared)", got)
		}
		if got := text(t, ctx, "user-id"); got != aliceID {
			t.Errorf("user id %q, want %q", got, aliceID)
		}
		shots.take(t, ctx, "home-email-not-shared")

		// The admins group decides, not the email: alice gets in without
		// sharing it.
		step(t, ctx, "opening /admin", chromedp.Navigate(app+"/admin"), chromedp.WaitVisible(chromedp.ID("welcome")))
		if got, want := text(t, ctx, "welcome"), "Welcome, (email not shared). Only admins see this page."; got != want {
			t.Errorf("admin page says %q, want %q", got, want)
		}
	})

	t.Run("bob is not an admin", func(t *testing.T) {
		ctx := newBrowserContext(t, browser)
		step(t, ctx, "opening /me", chromedp.Navigate(app+"/me"))
		wantConsentPage(t, ctx, issuer)
		approve(t, ctx, "bob", true)
		step(t, ctx, "waiting for /me", chromedp.WaitVisible(chromedp.ID("user-groups")))
		wantLocation(t, ctx, app+"/me")
		if name, groups := text(t, ctx, "user-name"), text(t, ctx, "user-groups"); name != "Bob Builder" || groups != "staff" {
			t.Errorf("/me: name %q, groups %q; want Bob Builder, staff", name, groups)
		}
		shots.take(t, ctx, "me-bob")

		resp := run1(t, ctx, "opening /admin", chromedp.NavigateResponse(app+"/admin"))
		if resp.Status != http.StatusForbidden {
			t.Errorf("/admin: status %d, want 403", resp.Status)
		}
		if got := text(t, ctx, "error-heading"); !strings.HasPrefix(got, "403 Forbidden") {
			t.Errorf("/admin says %q, want 403 Forbidden", got)
		}
		if got := text(t, ctx, "error-message"); got != "Your account is not allowed to see this page." {
			t.Errorf("/admin says %q", got)
		}
		if got := text(t, ctx, "logged-in-as"); !strings.Contains(got, "bob@example.org") || !strings.Contains(got, "admins group") {
			t.Errorf("/admin says %q, want bob's email and the admins group", got)
		}
		shots.take(t, ctx, "admin-forbidden")
	})

	t.Run("deny", func(t *testing.T) {
		ctx := newBrowserContext(t, browser)
		step(t, ctx, "opening /admin", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, ctx, issuer)
		step(t, ctx, "denying", chromedp.Click(chromedp.ID("deny")), chromedp.WaitVisible(chromedp.ID("try-again")))
		if got := text(t, ctx, "error-heading"); got != "You declined the login at PiPA" {
			t.Errorf("heading %q", got)
		}
		if loc := run1(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, app+"/callback?") {
			t.Errorf("the tab is at %s, want the callback", loc)
		}
		link := run1(t, ctx, "reading Try again", chromedp.AttributeValue(chromedp.ID("try-again"), "href"))
		// Try again returns to the page the declined login was for.
		if link.Value != "/login?return_to=%2Fadmin" || text(t, ctx, "try-again") != "Try again" {
			t.Errorf("Try again link %+v", link)
		}
		shots.take(t, ctx, "declined")
		step(t, ctx, "clicking Try again", chromedp.Click(chromedp.ID("try-again")))
		wantConsentPage(t, ctx, issuer)
	})

	t.Run("logout", func(t *testing.T) {
		ctx := newBrowserContext(t, browser)
		step(t, ctx, "opening /admin", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, ctx, issuer)
		approve(t, ctx, "alice", true)
		step(t, ctx, "waiting for /admin", chromedp.WaitVisible(chromedp.ID("welcome")))
		// PiPA remembers the browser: a new login goes straight through.
		step(t, ctx, "logging in again", chromedp.Navigate(app+"/login?return_to=/"), chromedp.WaitVisible(chromedp.ID("user-id")))
		wantLocation(t, ctx, app+"/")
		// Logging out ends PiPA's session too (the embedded PiPA, strict
		// like Ory Hydra, needs id_token_hint to send the browser back).
		// Wait for the notice, which only the page after the logout has:
		// #status is on the home page the click starts from as well.
		step(t, ctx, "clicking Log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("logged-out")))
		wantLocation(t, ctx, app+"/")
		if got := text(t, ctx, "status"); got != "You are not logged in." {
			t.Errorf("after logout the home page says %q", got)
		}
		if got, want := text(t, ctx, "logged-out"), "You have logged out of pipademo and of PiPA."; got != want {
			t.Errorf("after logout the home page's notice says %q, want %q", got, want)
		}
		shots.take(t, ctx, "logged-out")
		// So the next login asks for the user again.
		step(t, ctx, "opening /admin again", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, ctx, issuer)
	})

	t.Run("two tabs approved in reverse order", func(t *testing.T) {
		tab1 := newBrowserContext(t, browser)
		step(t, tab1, "tab 1: opening /admin", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, tab1, issuer)
		// A second tab in the same browser context, sharing the cookies.
		tab2, cancel := chromedp.NewContext(tab1)
		t.Cleanup(cancel)
		step(t, tab2, "tab 2: opening /admin", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, tab2, issuer)

		for i, tab := range []context.Context{tab2, tab1} {
			if _, err := chromedp.Call(tab, page.BringToFront, cdp.Empty{}); err != nil {
				t.Fatalf("bringing tab %d to the front: %v", 2-i, err)
			}
			approve(t, tab, "alice", true)
			step(t, tab, fmt.Sprintf("tab %d: waiting for /admin", 2-i), chromedp.WaitVisible(chromedp.ID("welcome")))
			wantLocation(t, tab, app+"/admin")
			if got := text(t, tab, "user-email"); got != "alice@example.com" {
				t.Errorf("tab %d: email %q", 2-i, got)
			}
		}
		shots.take(t, tab1, "tab1-admin")
		// Both tabs stay logged in.
		for i, tab := range []context.Context{tab1, tab2} {
			step(t, tab, fmt.Sprintf("tab %d: reloading", i+1), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("welcome")))
			wantLocation(t, tab, app+"/admin")
		}
	})

	// Tabs restored at the same instant: each login has its own cookie,
	// so all of them complete, whatever the order of approval.
	t.Run("four tabs opened at once", func(t *testing.T) {
		first := newBrowserContext(t, browser)
		step(t, first, "tab 1: opening a blank page", chromedp.Navigate("about:blank"))
		tabs := []context.Context{first}
		for i := 2; i <= 4; i++ {
			tab, cancel := chromedp.NewContext(first) // same browser context: shared cookies
			t.Cleanup(cancel)
			step(t, tab, fmt.Sprintf("tab %d: opening a blank page", i), chromedp.Navigate("about:blank"))
			tabs = append(tabs, tab)
		}
		want := func(i int) string { return fmt.Sprintf("%s/admin?tab=%d&q=a%%20b", app, i+1) }
		var wg sync.WaitGroup
		errs := make([]error, len(tabs))
		for i, tab := range tabs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = chromedp.Do(tab, chromedp.Navigate(want(i)), chromedp.WaitVisible(chromedp.ID("approve")))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("tab %d: opening %s: %v", i+1, want(i), err)
			}
			wantConsentPage(t, tabs[i], issuer)
		}
		for _, i := range []int{2, 0, 3, 1} {
			tab := tabs[i]
			if _, err := chromedp.Call(tab, page.BringToFront, cdp.Empty{}); err != nil {
				t.Fatalf("bringing tab %d to the front: %v", i+1, err)
			}
			approve(t, tab, "alice", true)
			step(t, tab, fmt.Sprintf("tab %d: waiting for /admin", i+1), chromedp.WaitVisible(chromedp.ID("welcome")))
			wantLocation(t, tab, want(i))
		}
		shots.take(t, tabs[3], "four-tabs-admin")
	})

	// /admin needs a sign-in within 5 minutes: after the home page's button
	// moves the clock ahead, it sends the browser to PiPA with max_age,
	// which asks for the user again, and the page comes back with the new
	// sign-in's time. A demo of its own, so that /metrics counts only this.
	t.Run("step-up at the embedded PiPA", func(t *testing.T) {
		d, srv := startDemo(t, true)
		app, issuer := srv.URL, d.Provider.URL
		ctx := newBrowserContext(t, browser)
		step(t, ctx, "opening /admin", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, ctx, issuer)
		if q := authorizeQuery(t, ctx); q.Has("max_age") {
			t.Errorf("the first login sent max_age=%s, want none", q.Get("max_age"))
		}
		approve(t, ctx, "alice", true)
		step(t, ctx, "waiting for /admin", chromedp.WaitVisible(chromedp.ID("step-up-rule")))
		first := authTime(t, ctx)
		if got := text(t, ctx, "step-up-rule"); !recentRule.MatchString(got) {
			t.Errorf("admin page says %q, want it to match %s", got, recentRule)
		}

		step(t, ctx, "opening /", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.ID("advance-clock")))
		step(t, ctx, "moving the clock ahead", chromedp.Click(chromedp.ID("advance-clock")), chromedp.WaitVisible(chromedp.ID("clock-ahead")))
		wantLocation(t, ctx, app+"/")
		shots.take(t, ctx, "clock-ahead")

		step(t, ctx, "opening /admin, stale", chromedp.Navigate(app+"/admin"))
		wantConsentPage(t, ctx, issuer)
		if q := authorizeQuery(t, ctx); q.Get("max_age") != "300" {
			t.Errorf("the step-up sent max_age=%q, want 300", q.Get("max_age"))
		}
		shots.take(t, ctx, "step-up-consent")
		approve(t, ctx, "alice", true)
		step(t, ctx, "waiting for /admin", chromedp.WaitVisible(chromedp.ID("step-up-rule")))
		wantLocation(t, ctx, app+"/admin")
		if second := authTime(t, ctx); second.Sub(first) < clockStep {
			t.Errorf("after the step-up the page says the user signed in at %v, want %v or more after %v", second, clockStep, first)
		}
		if got := text(t, ctx, "step-up-rule"); !recentRule.MatchString(got) {
			t.Errorf("admin page after the step-up says %q, want it to match %s", got, recentRule)
		}
		shots.take(t, ctx, "admin-after-step-up")

		step(t, ctx, "opening /metrics", chromedp.Navigate(app+"/metrics"))
		metrics := run1(t, ctx, "reading /metrics", chromedp.Evaluate[string]("document.body.innerText"))
		if want := `pipademo_auth_events_total{kind="login",reason=""} 2`; !strings.Contains(metrics, want) {
			t.Errorf("/metrics does not count two logins (%s):\n%s", want, metrics)
		}
		if strings.Contains(metrics, "login_failed") {
			t.Errorf("/metrics counts a failed login:\n%s", metrics)
		}
	})

	t.Run("session cookie is HttpOnly and SameSite=Lax", func(t *testing.T) {
		ctx := newBrowserContext(t, browser)
		step(t, ctx, "opening /login", chromedp.Navigate(app+"/login?return_to=/"))
		wantConsentPage(t, ctx, issuer)
		approve(t, ctx, "alice", true)
		step(t, ctx, "waiting for the home page", chromedp.WaitVisible(chromedp.ID("user-id")))

		if js := run1(t, ctx, "reading document.cookie", chromedp.Evaluate[string]("document.cookie")); strings.Contains(js, "pipaauth") {
			t.Errorf("document.cookie = %q shows the session cookie", js)
		}
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{app + "/"}})
		if err != nil {
			t.Fatalf("Network.getCookies: %v", err)
		}
		var session *network.Cookie
		for _, c := range res.Cookies {
			if strings.HasPrefix(c.Name, "pipaauth-") && !strings.Contains(c.Name, "-login-") {
				session = c
			}
		}
		if session == nil {
			t.Fatalf("no pipaauth cookie among %d cookies", len(res.Cookies))
		}
		if !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Path != "/" || session.Secure {
			t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q, Secure %v; want HttpOnly, Lax, /, not Secure on plain http",
				session.HTTPOnly, session.SameSite, session.Path, session.Secure)
		}
	})

	t.Logf("browser tests took %v", time.Since(begin).Round(time.Millisecond))
}
