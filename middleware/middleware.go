// Package middleware guards http.Handlers: requests with a logged-in session
// pass with the user in their context; others are sent to log in.
//
// Its API is wiring for package pipaauth, which builds a Guard in New and
// exposes it as Auth.RequireLogin and Auth.RequireUser: applications never
// need to import this package.
package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/events"
	"github.com/pipaauth/pipaauth/internal/httpx"
	"github.com/pipaauth/pipaauth/internal/returnto"
	"github.com/pipaauth/pipaauth/internal/userctx"
	"github.com/pipaauth/pipaauth/session"
)

// Sessions is what a Guard needs of a session manager.
// For wiring only: applications use package pipaauth.
type Sessions interface {
	Load(r *http.Request) (*session.Data, error)
	Touch(w http.ResponseWriter, r *http.Request, d *session.Data) error
}

// Config wires a Guard. Every field is required but Events.
// For wiring only: applications use package pipaauth.
type Config struct {
	Sessions Sessions
	Start    func(w http.ResponseWriter, r *http.Request, returnTo string) // begins a login with a redirect
	// StartStepUp begins a login with max_age for RequireRecentLogin;
	// subject is the session's user ("" without one).
	StartStepUp func(w http.ResponseWriter, r *http.Request, returnTo string, maxAge time.Duration, subject string)
	Now         func() time.Time                                // the clock RequireRecentLogin compares auth_time with
	ClockSkew   time.Duration                                   // tolerated difference from PiPA's clock, as at the callback
	LoginPath   string                                          // where the login handler is mounted, for the 401 body
	OnError     func(http.ResponseWriter, *http.Request, error) // renders a failure: its errors carry the status and a reason safe to show, which package pipaauth reads
	Logger      *slog.Logger
	// Events, optional, reports a session store failure on a guarded
	// request, after the response, as kind "session_store_error" with the
	// user id when known and the error (which wraps
	// pipaauth.ErrSessionStore).
	Events func(r *http.Request, kind, userID string, err error)
}

// Guard is the middleware. It is safe for concurrent use.
// For wiring only: applications use package pipaauth.
type Guard struct {
	cfg    Config
	events events.Sink // cfg.Events
}

// New returns a Guard.
// For wiring only: applications use package pipaauth.
func New(cfg Config) (*Guard, error) {
	if cfg.Sessions == nil || cfg.Start == nil || cfg.StartStepUp == nil || cfg.Now == nil || cfg.ClockSkew < 0 ||
		cfg.OnError == nil || cfg.Logger == nil || !strings.HasPrefix(cfg.LoginPath, "/") {
		return nil, errors.New("pipaauth: middleware configuration incomplete")
	}
	return &Guard{cfg: cfg, events: cfg.Events}, nil
}

// userContext is the context RequireLogin hands to the next handler: the
// request's, with the user. It also holds the backing array of the
// response's Vary header (see serve).
type userContext struct {
	context.Context // the guard's request's context
	user            *session.User
	vary            [1]string
}

func (c *userContext) Value(key any) any {
	if _, ok := key.(userctx.Key); ok {
		return c.user
	}
	return c.Context.Value(key)
}

// String names the context as the context package names its own.
func (c *userContext) String() string {
	return fmt.Sprintf("%v.WithValue(pipaauth user)", c.Context)
}

// RequireLogin calls next with the user in the request context when the
// request carries a live session. Otherwise a browser navigation is
// redirected to log in, and any other request gets 401 with a JSON body
// holding a login URL.
// For wiring only: applications use package pipaauth.
func (g *Guard) RequireLogin(next http.Handler) http.Handler {
	return g.require(next, 0)
}

// RequireRecentLogin is RequireLogin for a session whose user authenticated
// at PiPA at most maxAge (plus ClockSkew) ago, as its ID token's auth_time
// says (session.Data.AuthTimeClaimed): an older session, one without an
// auth_time, or none, is
// sent to log in with max_age (a navigation) or gets 401 (any other request,
// with error "insufficient_user_authentication" and max_age, as RFC 9470's
// challenge names them). maxAge must be at least one second.
// For wiring only: applications use package pipaauth.
func (g *Guard) RequireRecentLogin(maxAge time.Duration) func(http.Handler) http.Handler {
	if maxAge < time.Second {
		panic(fmt.Sprintf("pipaauth: RequireRecentLogin(%v): maxAge must be at least one second", maxAge))
	}
	return func(next http.Handler) http.Handler { return g.require(next, maxAge) }
}

// require is the guard; maxAge > 0 also requires a recent authentication.
func (g *Guard) require(next http.Handler, maxAge time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := g.cfg.Sessions.Load(r)
		if d.LoggedIn() && (maxAge == 0 || (d.AuthTimeClaimed && g.cfg.Now().Sub(d.User.AuthTime) <= maxAge+g.cfg.ClockSkew)) {
			g.serve(w, r, d, next)
			return
		}
		addVary(w.Header(), nil)
		if d.LoggedIn() {
			// A live session, but not a recent enough sign-in: step up,
			// leaving the session as it is until the new login succeeds.
			g.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: a recent login is required", slog.String("user", d.User.ID), slog.String("path", r.URL.Path))
			if isNavigation(r) {
				g.cfg.StartStepUp(w, r, returnto.FromRequest(r), maxAge, d.User.ID)
				return
			}
			g.unauthorized(w, r, maxAge)
			return
		}
		if errors.Is(err, errs.ErrSessionStore) && errors.Is(r.Context().Err(), context.Canceled) {
			// The client went away while its session was being loaded: not
			// the store's fault, and nobody is left to answer.
			g.cfg.Logger.LogAttrs(r.Context(), slog.LevelDebug, "pipaauth: client gone during a session store call", slog.String("error", err.Error()))
			return
		}
		if errors.Is(err, errs.ErrSessionStore) {
			g.cfg.Logger.LogAttrs(r.Context(), slog.LevelError, "pipaauth: session store failed on a protected request", slog.String("error", err.Error()))
			g.cfg.OnError(w, r, errs.StoreUnavailable(err))
			g.events.Emit(r, events.StoreError, "", err)
			return
		}
		if err != nil {
			g.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: ignoring unusable session cookie", slog.String("error", err.Error()))
		}
		// An unusable session cookie is left alone, on navigations and
		// API calls alike: a request sent with a cookie from before a login
		// may be answered after it, and deleting "its" cookie would then
		// delete the new session. A login replaces the cookie, a logout
		// clears it, and it expires on its own.
		switch {
		case isNavigation(r) && maxAge > 0:
			g.cfg.StartStepUp(w, r, returnto.FromRequest(r), maxAge, "")
		case isNavigation(r):
			g.cfg.Start(w, r, returnto.FromRequest(r))
		default:
			g.unauthorized(w, r, 0) // no session: login_required, step-up or not
		}
	})
}

// serve calls next for a logged-in session d, with the user in the
// request's context, sliding the idle timeout first.
func (g *Guard) serve(w http.ResponseWriter, r *http.Request, d *session.Data, next http.Handler) {
	terr := g.cfg.Sessions.Touch(w, r, d)
	if terr != nil {
		// The idle timeout does not slide this time; the request is fine.
		g.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: could not slide the idle timeout", slog.String("error", terr.Error()))
	}
	// One allocation holds the request handed to next, its context and
	// the Vary header's backing array: r.WithContext's copy is made in it
	// (WithContext is inlined, and its result copied, so it does not
	// escape). d is shared and never changed, so its User is handed out
	// by pointer; pipaauth.UserFromContext copies it.
	gr := &guardedRequest{ctx: userContext{Context: r.Context(), user: &d.User, vary: [1]string{"Cookie"}}}
	addVary(w.Header(), gr.ctx.vary[:])
	gr.req = *r.WithContext(&gr.ctx)
	next.ServeHTTP(w, &gr.req)
	if terr != nil && errors.Is(terr, errs.ErrSessionStore) {
		g.events.Emit(r, events.StoreError, d.User.ID, terr) // after the response
	}
}

// guardedRequest is what the guard allocates for a request it lets
// through: the request next gets, and that request's context.
type guardedRequest struct {
	req http.Request
	ctx userContext
}

// addVary adds "Vary: Cookie" to h: the response depends on the session
// cookie, and caches must not serve it to another browser. backing, when
// not nil, is a one-element slice holding "Cookie", used as the header's
// value when h has none yet (saving Header.Add's allocation).
func addVary(h http.Header, backing []string) {
	if backing != nil && (len(h) == 0 || h["Vary"] == nil) {
		h["Vary"] = backing
		return
	}
	h.Add("Vary", "Cookie")
}

// RequireUser is RequireLogin followed by allow: a logged-in user allow
// refuses gets 403.
// For wiring only: applications use package pipaauth.
func (g *Guard) RequireUser(allow func(session.User) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return g.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := userctx.From(r.Context())
			if allow == nil || !allow(u) {
				g.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: user not allowed", slog.String("user", u.ID), slog.String("path", r.URL.Path))
				g.cfg.OnError(w, r, errs.New(http.StatusForbidden, errs.ErrForbidden, "Your account is not allowed to see this page.", nil))
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
}

// isNavigation reports whether r looks like a top-level browser navigation,
// the only kind of request worth a redirect to the login page.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	if m := h.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	if strings.EqualFold(h.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	return !httpx.WantsJSON(r)
}

type unauthorizedBody struct {
	Error    string `json:"error"`
	LoginURL string `json:"login_url"`
	MaxAge   int64  `json:"max_age,omitempty"` // seconds, for RequireRecentLogin
}

// unauthorized answers 401 with a login URL; maxAge > 0 (RequireRecentLogin)
// names the error and max_age as RFC 9470's step-up challenge does.
func (g *Guard) unauthorized(w http.ResponseWriter, r *http.Request, maxAge time.Duration) {
	q := url.Values{}
	if maxAge > 0 {
		// LoginHandler then starts a step-up, not a plain login that a
		// provider's single sign-on would answer with the old auth_time.
		q.Set("max_age", strconv.FormatInt(int64(maxAge/time.Second), 10))
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if p := returnto.FromRequest(r); p != "/" {
			q.Set("return_to", p)
		}
	}
	login := g.cfg.LoginPath
	if len(q) > 0 {
		login += "?" + q.Encode()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body := unauthorizedBody{Error: "login_required", LoginURL: login}
	challenge := `PiPA realm="pipaauth", login_url="` + login + `"`
	if maxAge > 0 {
		body.Error, body.MaxAge = "insufficient_user_authentication", int64(maxAge/time.Second)
		challenge += `, error="insufficient_user_authentication", max_age=` + strconv.FormatInt(body.MaxAge, 10)
	}
	h.Set("WWW-Authenticate", challenge)
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(body)
}
