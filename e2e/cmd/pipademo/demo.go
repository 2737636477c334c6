package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/memstore"
	"github.com/pipaauth/pipaauth/pipatest"
)

// demoClientID is the client the demo registers at the embedded PiPA; the
// consent page names it.
const demoClientID = "pipademo"

// adminMaxAge is how recent a sign-in at PiPA /admin needs
// (RequireRecentLogin).
const adminMaxAge = 5 * time.Minute

// options configure a demo.
type options struct {
	// AppURL is the origin the browser reaches the app at, such as
	// http://127.0.0.1:8080. With the embedded PiPA the demo registers
	// AppURL+"/callback" as its redirect URL and AppURL+"/" as its
	// post-logout redirect URL. Unused with a real PiPA.
	AppURL string
	// Admins may see /admin (verified emails only) beside the members of
	// the admins group. Default none.
	Admins []string
	// PiPA, when set, is a real PiPA to log in with. When nil the demo starts
	// an embedded PiPA (pipatest) in interactive mode on 127.0.0.1.
	PiPA *pipaConfig
	// Logger gets the demo's and pipaauth's log lines. Default slog.Default().
	Logger *slog.Logger
}

// demo is the app: its handler, and the embedded PiPA when there is one.
type demo struct {
	Handler http.Handler
	// Provider is the embedded PiPA, nil with a real one.
	Provider *pipatest.Server
	// Issuer is the issuer URL of the PiPA in use.
	Issuer string
	// Admins may see /admin, beside the members of the admins group.
	Admins []string

	auth      *pipaauth.Auth
	apiErrors func(http.ResponseWriter, *http.Request, error)
	// events counts pipaauth's events, shown at /metrics and on the home
	// page.
	events *eventCounts
	// clock is the clock the app and the embedded PiPA share, which the
	// home page can move ahead; nil with a real PiPA, whose clock the demo
	// cannot move.
	clock *demoClock
	// secure sets the Secure attribute on the demo's own cookies: the app
	// is served over https.
	secure bool
}

// The demo's own cookies, beside pipaauth's session: what the pages need to
// say after a login failed or a logout. Neither holds anything secret.
const (
	// returnCookie holds the demo page a login was started for, so that
	// "Try again" after a failed login goes back there.
	returnCookie = "pipademo_return"
	// logoutCookie says, once, that the user just logged out: "app" when
	// only this app's session ended, "pipa" when the logout went on to
	// PiPA's end-session endpoint.
	logoutCookie = "pipademo_logout"
)

// returnPages are the pages a login may return to in the demo: the only
// values returnCookie may carry.
var returnPages = []string{"/", "/admin", "/api/me", "/me"}

// newDemo builds the app. With opts.PiPA nil it starts the embedded PiPA;
// call Close to stop it.
func newDemo(ctx context.Context, opts options) (*demo, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &demo{Admins: opts.Admins, events: &eventCounts{}}
	cfg := pipaauth.Config{
		// The user's name and groups, for /me and /admin.
		Claims:       []string{"name", "groups"},
		ErrorHandler: d.renderError,
		Logger:       log,
		OnEvent:      d.events.OnEvent,
	}
	if p := opts.PiPA; p != nil {
		cfg.Issuer = p.Issuer
		cfg.ClientID = p.ClientID
		cfg.ClientSecret = p.ClientSecret
		cfg.RedirectURL = p.RedirectURL
		cfg.PostLogoutRedirectURL = p.PostLogoutRedirectURL
		cfg.SessionKeys = p.SessionKeys
		cfg.InsecureAllowHTTP = p.InsecureAllowHTTP
		if p.InsecureAllowHTTP {
			log.Info("pipademo: plain-HTTP redirect URL on localhost: local development mode, the session cookie is not Secure")
		}
	} else {
		app := strings.TrimSuffix(opts.AppURL, "/")
		if !strings.HasPrefix(app, "http://") {
			return nil, fmt.Errorf("pipademo: the embedded PiPA needs the app's http:// URL, got %q", opts.AppURL)
		}
		hashKey, blockKey := securecookie.GenerateRandomKey(64), securecookie.GenerateRandomKey(32)
		if hashKey == nil || blockKey == nil {
			return nil, errors.New("pipademo: could not generate session keys")
		}
		secret := rand.Text()
		d.clock = &demoClock{}
		p := pipatest.NewUnstartedServer()
		p.SetInteractive(true)
		// One clock for the app and the provider, which the home page can
		// move ahead to show step-up without waiting.
		p.SetClock(d.clock.Now)
		cfg.Now = d.clock.Now
		// As strict as Ory Hydra at logout: post_logout_redirect_uri only
		// with id_token_hint.
		p.SetBehavior(pipatest.Behavior{RequireIDTokenHint: true})
		// Names and groups, in the ID token: alice is an admin, bob is not.
		p.AddUser(pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true,
			Claims: map[string]any{"name": "Alice Liddell", "groups": []string{adminGroup, "staff"}}})
		p.AddUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: false,
			Claims: map[string]any{"name": "Bob Builder", "groups": []string{"staff"}}})
		p.RegisterClient(pipatest.Client{
			ID:                     demoClientID,
			Secret:                 secret,
			RedirectURLs:           []string{app + "/callback"},
			PostLogoutRedirectURLs: []string{app + "/"},
		})
		p.Start()
		d.Provider = p
		cfg.Issuer = p.URL
		cfg.ClientID = demoClientID
		cfg.ClientSecret = secret
		cfg.RedirectURL = app + "/callback"
		cfg.PostLogoutRedirectURL = app + "/"
		cfg.SessionKeys = [][]byte{hashKey, blockKey}
		cfg.HTTPClient = p.Client()
		cfg.InsecureAllowHTTP = true
		log.Info("pipademo: local plain-HTTP dev mode: the app and the embedded PiPA speak plain http on this machine (InsecureAllowHTTP); never run a real site like this",
			slog.String("app", app+"/"), slog.String("pipa", p.URL))
		log.Info("pipademo: session keys were generated at start: sessions will not survive a restart")
	}
	// Sessions in this process's memory (memstore), so that the Signed in
	// on page can list and end them; like the generated keys, they do not
	// survive a restart.
	cfg.SessionStore = memstore.New(memstore.Options{Now: d.now})
	d.Issuer = cfg.Issuer
	d.secure = strings.HasPrefix(cfg.RedirectURL, "https://")
	d.apiErrors = pipaauth.DefaultErrorHandler(pipaauth.DefaultLoginPath)

	auth, err := pipaauth.New(ctx, cfg)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.auth = auth

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.home)
	// Admins only, and only with a sign-in at PiPA within adminMaxAge.
	// RequireUser goes first, so that a user who may not see the page gets
	// 403 at once instead of being asked to sign in again for nothing.
	inGroup, byEmail := pipaauth.AllowClaim("groups", adminGroup), pipaauth.AllowEmails(d.Admins...)
	admins := auth.RequireUser(func(u pipaauth.User) bool { return inGroup(u) || byEmail(u) })
	recent := auth.RequireRecentLogin(adminMaxAge)
	mux.Handle("GET /admin", d.rememberReturn(admins(recent(http.HandlerFunc(d.admin)))))
	mux.Handle("GET /api/me", d.rememberReturn(auth.RequireLogin(http.HandlerFunc(d.me))))
	mux.Handle("GET /me", d.rememberReturn(auth.RequireLogin(http.HandlerFunc(d.mePage))))
	mux.Handle("GET /login", d.rememberReturn(auth.LoginHandler()))
	mux.Handle("GET /callback", auth.CallbackHandler())
	logout := d.noteLogout(auth.LogoutHandler())
	mux.Handle("POST /logout", logout)
	mux.Handle("/logout", logout) // other methods: LogoutHandler's 405 page
	mux.Handle("GET /metrics", d.events)
	sessionsCOP := http.NewCrossOriginProtection()
	sessionsCOP.SetDenyHandler(http.HandlerFunc(d.crossOriginSessions))
	mux.Handle("GET "+sessionsPath, d.rememberReturn(auth.RequireLogin(http.HandlerFunc(d.sessionsPage))))
	mux.Handle("POST "+sessionsPath+"/end", sessionsCOP.Handler(auth.RequireLogin(http.HandlerFunc(d.endSession))))
	mux.Handle("POST "+sessionsPath+"/end-others", sessionsCOP.Handler(auth.RequireLogin(http.HandlerFunc(d.endOtherSessions))))
	if d.clock != nil {
		cop := http.NewCrossOriginProtection()
		cop.SetDenyHandler(http.HandlerFunc(d.crossOrigin))
		mux.Handle("POST "+clockPath, cop.Handler(http.HandlerFunc(d.advanceClock)))
	}
	mux.HandleFunc("/", d.notFound)
	d.Handler = securityHeaders(mux)
	return d, nil
}

// Close stops the embedded PiPA, if any.
func (d *demo) Close() {
	if d.Provider != nil {
		d.Provider.Close()
	}
}

// securityHeaders sets the headers every page of the demo carries. There is
// no CSP form-action: browsers apply it to the redirect that follows the
// logout form, which goes to PiPA.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

// viewUser is a User as the pages show it.
type viewUser struct {
	ID            string
	Email         string // "" when not shared
	EmailVerified bool
	// AuthTime is when the user last signed in at PiPA (User.AuthTime),
	// zero when unknown; AuthAge how long ago that was by the demo's clock.
	AuthTime time.Time
	AuthAge  time.Duration
	// FullName and Groups are the kept name and groups claims; "" and nil
	// when PiPA sent none.
	FullName string
	Groups   []string
}

// SignedIn says when the user last signed in at PiPA, for the pages.
func (u viewUser) SignedIn() string {
	if u.AuthTime.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%s (%s ago)", u.AuthTime.UTC().Format("2006-01-02 15:04:05 UTC"), u.Ago())
}

// Ago is AuthAge to the second.
func (u viewUser) Ago() string { return u.AuthAge.Round(time.Second).String() }

// AuthTimeAttr is AuthTime for a datetime attribute (RFC 3339), "" when
// unknown.
func (u viewUser) AuthTimeAttr() string {
	if u.AuthTime.IsZero() {
		return ""
	}
	return u.AuthTime.UTC().Format(time.RFC3339)
}

func (u viewUser) Name() string {
	if u.Email != "" {
		return u.Email
	}
	return "(email not shared)"
}

type pageData struct {
	Title  string
	User   *viewUser
	Admins []string
	// Error pages.
	Status       int
	Heading      string
	Message      string
	Retry        string // a "Try again" link, or ""
	NotAllowedAs bool   // a 403 for a logged-in user: offer to log out
	StepUpKept   bool   // a refused step-up left this user's session as it was
	// Home page after a logout: "app" (this app's session ended), "pipa"
	// (PiPA's too), or "".
	LoggedOut string
	// Signed in on page: the user's sessions, and how many devices the
	// last action signed out ("" for none).
	Sessions []sessionView
	Ended    string
	// Home page: the event counts so far.
	Events []eventCount
	// AdminMaxAge is /admin's RequireRecentLogin maxAge, in words, and
	// ClockSkew the tolerance the library adds to it (the default).
	AdminMaxAge string
	ClockSkew   string
	// Clock is the demo's movable clock (nil with a real PiPA): the home
	// page offers to move it ahead, and every page says how far ahead it
	// is.
	Clock *clockView
}

// clockView is the demo's clock as the pages show it.
type clockView struct {
	Ahead string // how far ahead of real time, "" when it is not
	Step  string // how far the button moves it
}

func (d *demo) page(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	data.Admins = d.Admins
	data.AdminMaxAge = minutes(adminMaxAge)
	data.ClockSkew = minutes(pipaauth.DefaultClockSkew)
	if d.clock != nil {
		data.Clock = &clockView{Step: minutes(clockStep)}
		if ahead := d.clock.Ahead(); ahead > 0 {
			data.Clock.Ahead = minutes(ahead)
		}
	}
	var buf strings.Builder
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "pipademo: rendering the page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprint(w, buf.String())
	}
}

// minutes writes d, a whole number of minutes, in words.
func minutes(d time.Duration) string {
	if m := int(d / time.Minute); m == 1 {
		return "1 minute"
	} else if time.Duration(m)*time.Minute == d {
		return fmt.Sprintf("%d minutes", m)
	}
	return d.String()
}

// now is the demo's time: the movable clock's with the embedded PiPA.
func (d *demo) now() time.Time {
	if d.clock != nil {
		return d.clock.Now()
	}
	return time.Now()
}

func (d *demo) toView(u pipaauth.User) *viewUser {
	v := &viewUser{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, AuthTime: u.AuthTime}
	// A claim of another shape (a number for a name, say) is shown as
	// absent.
	if ok, err := u.Claim("name", &v.FullName); ok && err != nil {
		v.FullName = ""
	}
	if ok, err := u.Claim("groups", &v.Groups); ok && err != nil {
		v.Groups = nil
	}
	if !u.AuthTime.IsZero() {
		v.AuthAge = max(d.now().Sub(u.AuthTime), 0)
	}
	return v
}

func (d *demo) home(w http.ResponseWriter, r *http.Request) {
	data := pageData{Title: "pipademo"}
	if u, ok := d.auth.User(r); ok {
		data.User = d.toView(u)
	} else if c, err := r.Cookie(logoutCookie); err == nil {
		data.LoggedOut = c.Value
	}
	if _, err := r.Cookie(logoutCookie); err == nil {
		d.setCookie(w, logoutCookie, "", -1) // said once
	}
	data.Events = d.events.Snapshot()
	d.page(w, r, http.StatusOK, "home", data)
}

// clockPath is where the home page's form moves the demo's clock ahead.
const clockPath = "/demo/clock"

// advanceClock moves the clock of the app and of the embedded PiPA ahead by
// clockStep, then goes back to the home page. It is served only with the
// embedded PiPA, behind a cross-origin check.
func (d *demo) advanceClock(w http.ResponseWriter, r *http.Request) {
	d.clock.Advance(clockStep)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// crossOrigin answers a POST to clockPath from another site.
func (d *demo) crossOrigin(w http.ResponseWriter, r *http.Request) {
	d.page(w, r, http.StatusForbidden, "error", pageData{
		Title:   "Forbidden — pipademo",
		Status:  http.StatusForbidden,
		Heading: "403 Forbidden",
		Message: "Move the clock with the button on the home page of the demo.",
	})
}

// setCookie sets (maxAge > 0) or deletes (maxAge < 0) one of the demo's own
// cookies.
func (d *demo) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode})
}

// rememberReturn notes in returnCookie the page a login starting here will
// return to: the return_to of /login, or the protected page itself when its
// guard answers with a redirect to PiPA (nobody logged in, or a sign-in
// too old for RequireRecentLogin). Only the demo's own pages are noted.
func (d *demo) rememberReturn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pipaauth.DefaultLoginPath {
			d.noteReturn(w, r.URL.Query().Get("return_to"))
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&returnWriter{ResponseWriter: w, d: d, page: r.URL.Path}, r)
	})
}

// noteReturn sets returnCookie to page, or to "/" for a page that is not
// one of returnPages.
func (d *demo) noteReturn(w http.ResponseWriter, page string) {
	noted := "/" // where LoginHandler goes for any other return_to
	for _, p := range returnPages {
		if page == p {
			noted = p
		}
	}
	d.setCookie(w, returnCookie, url.PathEscape(noted), 600)
}

// returnWriter notes page in returnCookie when the response is a redirect:
// the demo's protected pages redirect only to start a login.
type returnWriter struct {
	http.ResponseWriter
	d     *demo
	page  string
	wrote bool
}

func (rw *returnWriter) WriteHeader(status int) {
	if !rw.wrote && status >= 300 && status < 400 {
		rw.d.noteReturn(rw.ResponseWriter, rw.page)
	}
	rw.wrote = true
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *returnWriter) Write(p []byte) (int, error) {
	rw.wrote = true
	return rw.ResponseWriter.Write(p)
}

// retryLink is the "Try again" link after a failed login: a new login that
// returns to the page the failed one was for.
func retryLink(r *http.Request) string {
	if c, err := r.Cookie(returnCookie); err == nil {
		if page, err := url.PathUnescape(c.Value); err == nil && page != "/" {
			for _, p := range returnPages {
				if page == p {
					return pipaauth.DefaultLoginPath + "?return_to=" + url.QueryEscape(p)
				}
			}
		}
	}
	return pipaauth.DefaultLoginPath
}

// noteLogout sets logoutCookie when the logout handler answers with its
// redirect: to "pipa" when the redirect goes to PiPA's end-session endpoint
// (which comes back to the post-logout redirect URL, the home page), to
// "app" when it goes straight home.
func (d *demo) noteLogout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&logoutWriter{ResponseWriter: w, d: d}, r)
	})
}

type logoutWriter struct {
	http.ResponseWriter
	d     *demo
	wrote bool
}

func (lw *logoutWriter) WriteHeader(status int) {
	if !lw.wrote && status == http.StatusSeeOther {
		where := "pipa"
		if loc := lw.Header().Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
			where = "app"
		}
		lw.d.setCookie(lw.ResponseWriter, logoutCookie, where, 300)
	}
	lw.wrote = true
	lw.ResponseWriter.WriteHeader(status)
}

func (lw *logoutWriter) Write(p []byte) (int, error) {
	lw.wrote = true
	return lw.ResponseWriter.Write(p)
}

func (d *demo) admin(w http.ResponseWriter, r *http.Request) {
	u, _ := pipaauth.UserFromContext(r.Context())
	d.page(w, r, http.StatusOK, "admin", pageData{Title: "Admin — pipademo", User: d.toView(u)})
}

func (d *demo) me(w http.ResponseWriter, r *http.Request) {
	u, _ := pipaauth.UserFromContext(r.Context())
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	v := d.toView(u)
	json.NewEncoder(w).Encode(struct {
		ID            string   `json:"id"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name,omitempty"`
		Groups        []string `json:"groups,omitempty"`
	}{u.ID, u.Email, u.EmailVerified, v.FullName, v.Groups})
}

// mePage shows who is logged in, with the name and groups PiPA sent.
func (d *demo) mePage(w http.ResponseWriter, r *http.Request) {
	u, _ := pipaauth.UserFromContext(r.Context())
	d.page(w, r, http.StatusOK, "me", pageData{Title: "Me — pipademo", User: d.toView(u)})
}

func (d *demo) notFound(w http.ResponseWriter, r *http.Request) {
	d.page(w, r, http.StatusNotFound, "error", pageData{
		Title:   "Not found — pipademo",
		Status:  http.StatusNotFound,
		Heading: "404 Not Found",
		Message: "There is no page here.",
	})
}

// renderError is the Config.ErrorHandler: a page in the demo's style for
// every failure pipaauth reports. It shows the status and the safe Reason of
// the *pipaauth.Error, never err.Error(), which is for logs. API clients
// (asking for JSON only) get pipaauth's JSON answer.
func (d *demo) renderError(w http.ResponseWriter, r *http.Request, err error) {
	if pipaauth.WantsJSON(r) {
		d.apiErrors(w, r, err)
		return
	}
	status, reason := http.StatusInternalServerError, "Something went wrong."
	var e *pipaauth.Error
	if errors.As(err, &e) {
		if e.Status != 0 {
			status = e.Status
		}
		if e.Reason != "" {
			reason = e.Reason
		}
	}
	data := pageData{
		Title:   http.StatusText(status) + " — pipademo",
		Status:  status,
		Heading: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Message: reason,
	}
	var pe *pipaauth.ProviderError
	switch {
	case errors.As(err, &pe) && pe.Code == "access_denied":
		data.Title = "Login declined — pipademo"
		data.Heading = "You declined the login at PiPA"
		data.Message = "Nothing was shared with this app, and you are not logged in."
		data.Retry = retryLink(r)
	case pipaauth.Retryable(err):
		data.Title = "Login failed — pipademo"
		data.Heading = "The login did not work"
		data.Retry = retryLink(r)
	case errors.Is(err, pipaauth.ErrForbidden):
		data.Heading = "403 Forbidden: admins only"
	case errors.Is(err, pipaauth.ErrStepUp):
		// RequireRecentLogin's callback refused the login: the session, if
		// any, is as it was. (No guard ran, so the user is not in the
		// request's context: read the session.)
		data.Title = "Sign-in not confirmed — pipademo"
		data.Heading = "The new sign-in was not accepted"
		data.Retry = retryLink(r)
		if u, ok := d.auth.User(r); ok {
			data.User = d.toView(u)
			data.StepUpKept = true
		}
	}
	if u, ok := pipaauth.UserFromContext(r.Context()); ok {
		data.User = d.toView(u)
		data.NotAllowedAs = status == http.StatusForbidden
	}
	d.page(w, r, status, "error", data)
}
