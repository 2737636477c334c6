package main

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pipaauth/pipaauth"
)

// The "Signed in on" page: the user's sessions (pipaauth.Auth.Sessions),
// with a button to end each other one and one to end all the others. The
// two POST routes sit behind http.CrossOriginProtection, as the logout
// does: a form on another site cannot end anyone's sessions.

const sessionsPath = "/sessions"

// sessionView is one session as the page shows it.
type sessionView struct {
	ID        string
	Current   bool
	Device    string
	UserAgent string
	LoginAt   string
	LastSeen  string
}

func (d *demo) sessionsPage(w http.ResponseWriter, r *http.Request) {
	u, _ := pipaauth.UserFromContext(r.Context())
	list, err := d.auth.Sessions(r)
	if err != nil {
		d.renderError(w, r, err)
		return
	}
	data := pageData{Title: "Signed in on — pipademo", User: d.toView(u)}
	for _, s := range list {
		data.Sessions = append(data.Sessions, sessionView{
			ID: s.ID, Current: s.Current, Device: device(s.UserAgent), UserAgent: s.UserAgent,
			LoginAt: when(s.LoginAt), LastSeen: when(s.LastSeen),
		})
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("ended")); err == nil && n >= 0 {
		data.Ended = plural(n, "device")
	}
	d.page(w, r, http.StatusOK, "sessions", data)
}

// endSession ends the session the form names, then shows the page again;
// ending this device's own session logs it out, to the home page.
func (d *demo) endSession(w http.ResponseWriter, r *http.Request) {
	list, err := d.auth.Sessions(r)
	if err != nil {
		d.renderError(w, r, err)
		return
	}
	id := r.PostFormValue("id")
	current := false
	for _, s := range list {
		current = current || s.ID == id && s.Current
	}
	switch err := d.auth.EndSession(w, r, id); {
	case errors.Is(err, pipaauth.ErrSessionNotFound):
		// Ended meanwhile (another tab, another device): nothing to do.
		http.Redirect(w, r, sessionsPath+"?ended=0", http.StatusSeeOther)
	case err != nil:
		d.renderError(w, r, err)
	case current:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		http.Redirect(w, r, sessionsPath+"?ended=1", http.StatusSeeOther)
	}
}

// endOtherSessions signs out every other device.
func (d *demo) endOtherSessions(w http.ResponseWriter, r *http.Request) {
	n, err := d.auth.EndOtherSessions(r)
	if err != nil {
		d.renderError(w, r, err)
		return
	}
	http.Redirect(w, r, sessionsPath+"?ended="+strconv.Itoa(n), http.StatusSeeOther)
}

// crossOriginSessions answers a cross-site POST to the sessions routes.
func (d *demo) crossOriginSessions(w http.ResponseWriter, r *http.Request) {
	d.page(w, r, http.StatusForbidden, "error", pageData{
		Title:   "Forbidden — pipademo",
		Status:  http.StatusForbidden,
		Heading: "403 Forbidden",
		Message: "Sign devices out with the buttons on the demo's own Signed in on page.",
	})
}

func when(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// device names a browser and system from a User-Agent, roughly, for people:
// "Chrome on Linux". It never trusts it for anything else.
func device(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	browser := "A browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"},
		{"HeadlessChrome/", "Chrome (headless)"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client/", "Go program"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			return browser + " on " + o.name
		}
	}
	return browser
}
