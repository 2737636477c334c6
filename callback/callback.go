// Package callback runs the authorization code flow with PiPA: it starts a
// login (state, nonce, PKCE) and finishes it on the redirect back (state
// check, code exchange, ID token verification, new session).
//
// Its API is wiring for package pipaauth, which builds a Flow in New and
// exposes it as Auth.LoginHandler and Auth.CallbackHandler: applications
// never need to import this package.
package callback

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/events"
	"github.com/pipaauth/pipaauth/internal/returnto"
	"github.com/pipaauth/pipaauth/session"
)

// Config wires a Flow. Every field is required unless noted.
// For wiring only: applications use package pipaauth.
type Config struct {
	OAuth2   *oauth2.Config                                  // client id and secret, endpoints with a fixed AuthStyle, redirect URL, scopes
	Verifier *oidc.IDTokenVerifier                           // checks signature, iss and aud; build it with SkipExpiryCheck: the Flow checks exp with ClockSkew
	Issuer   string                                          // expected in the callback's iss parameter
	Sessions *session.Manager                                //
	Client   *http.Client                                    // token and JWKS requests
	OnError  func(http.ResponseWriter, *http.Request, error) // renders an *errs.Error

	PKCE       bool          // send an S256 code challenge
	RequireIss bool          // the provider promises an iss parameter on the callback (RFC 9207)
	KeepTokens bool          // store the provider's tokens in the session
	AttemptTTL time.Duration // how long a started login may take; spent states are remembered this long
	Timeout    time.Duration // bound on the code exchange and ID token verification
	ClockSkew  time.Duration // tolerated skew for exp, iat, nbf and auth_time, either way
	UserInfo   UserInfoFunc  // optional: fetches UserInfo when the ID token has no email or lacks a named claim (nil: the provider has no userinfo_endpoint)
	Claims     []string      // optional: the claims kept in User.Claims (checked and deduplicated by the caller)
	// Revoke, optional, revokes tokens at the provider (RFC 7009),
	// bounded and best effort: with KeepTokens, a login that replaces a
	// session holding other tokens revokes those, which nothing would hold
	// any more but a copy of the old cookie.
	Revoke func(ctx context.Context, t *session.Tokens)
	Now    func() time.Time //
	Logger *slog.Logger     //
	Events events.Sink      // optional: one login or login_failed per start failure and per callback
}

// UserInfoFunc fetches the UserInfo of the token source's access token, as
// (*oidc.Provider).UserInfo does, through the client in ctx.
// For wiring only: applications use package pipaauth.
type UserInfoFunc func(ctx context.Context, ts oauth2.TokenSource) (*oidc.UserInfo, error)

// Flow starts and finishes logins. It is safe for concurrent use.
// For wiring only: applications use package pipaauth.
type Flow struct {
	cfg     Config
	openid  bool
	refresh refreshes
	spent   *spent
}

// maxSpent caps the states a Flow remembers as used (about 100 bytes each).
const maxSpent = 100_000

// New checks cfg and returns a Flow.
// For wiring only: applications use package pipaauth.
func New(cfg Config) (*Flow, error) {
	if cfg.OAuth2 == nil || cfg.Sessions == nil || cfg.Client == nil || cfg.OnError == nil ||
		cfg.Now == nil || cfg.Logger == nil || cfg.AttemptTTL <= 0 || cfg.Timeout <= 0 {
		return nil, fmt.Errorf("%w: callback configuration incomplete", errs.ErrConfig)
	}
	if cfg.OAuth2.Endpoint.AuthStyle == oauth2.AuthStyleAutoDetect {
		// Auto-detection retries a failed exchange with the other style,
		// sending the code twice.
		return nil, fmt.Errorf("%w: the token endpoint's client authentication style must be fixed", errs.ErrConfig)
	}
	f := &Flow{cfg: cfg, openid: slices.Contains(cfg.OAuth2.Scopes, oidc.ScopeOpenID), spent: newSpent(cfg.AttemptTTL, maxSpent)}
	if f.openid && cfg.Verifier == nil {
		return nil, fmt.Errorf("%w: the openid scope needs an ID token verifier", errs.ErrConfig)
	}
	return f, nil
}

// Start begins a login for the browser behind r: it writes the attempt's
// own cookie (see session.Manager.StartAttempt) and redirects to PiPA's
// authorization endpoint. The session, if any, is neither read nor written.
// returnTo is where the browser lands after the login; anything but a
// same-origin path is replaced by "/".
// For wiring only: applications use package pipaauth.
func (f *Flow) Start(w http.ResponseWriter, r *http.Request, returnTo string) {
	f.start(w, r, returnTo, 0, "")
}

// StartStepUp begins a login for a page that needs a recent one
// (RequireRecentLogin): the authorization request carries max_age, maxAge
// in whole seconds rounded down (OpenID Connect Core 3.1.2.1), and the
// attempt remembers it and subject, the user id of the session that asked
// ("" for anyone). Its callback then refuses an ID token without an
// auth_time within that max_age plus ClockSkew, or for another user, and
// leaves the session as it was. A maxAge below one second starts a plain
// login, as Start does.
// For wiring only: applications use package pipaauth.
func (f *Flow) StartStepUp(w http.ResponseWriter, r *http.Request, returnTo string, maxAge time.Duration, subject string) {
	f.start(w, r, returnTo, maxAge.Truncate(time.Second), subject)
}

func (f *Flow) start(w http.ResponseWriter, r *http.Request, returnTo string, maxAge time.Duration, subject string) {
	a := session.Attempt{
		State:    random(),
		Nonce:    random(),
		ReturnTo: returnto.Or(returnTo, "/"),
		Started:  f.cfg.Now(),
		MaxAge:   maxAge,
		Subject:  subject,
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(a.Nonce)}
	if maxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(maxAge/time.Second), 10)))
	}
	if slices.Contains(f.cfg.OAuth2.Scopes, oidc.ScopeOfflineAccess) {
		// OpenID Connect Core 11: offline_access is ignored unless the
		// user is asked for consent, so no refresh token would come.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	if f.cfg.PKCE {
		a.Verifier = oauth2.GenerateVerifier()
		opts = append(opts, oauth2.S256ChallengeOption(a.Verifier))
	}
	if err := f.cfg.Sessions.StartAttempt(w, r, a); err != nil {
		f.fail(w, r, &errs.Error{Status: http.StatusInternalServerError, Reason: "The login could not be started. Please try again in a moment.", Err: err})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, f.cfg.OAuth2.AuthCodeURL(a.State, opts...), http.StatusFound)
}

// random returns 128 bits from crypto/rand, base64url without padding.
func random() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (f *Flow) fail(w http.ResponseWriter, r *http.Request, e *errs.Error) {
	f.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: login failed",
		slog.Int("status", e.Status), slog.String("reason", e.Reason), slog.String("error", e.Error()))
	f.cfg.OnError(w, r, e)
	f.cfg.Events.Emit(r, events.LoginFailed, "", e)
}

// ServeHTTP handles PiPA's redirect back to the application.
// For wiring only: applications use package pipaauth.
func (f *Flow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet {
		h.Set("Allow", http.MethodGet)
		f.fail(w, r, errs.New(http.StatusMethodNotAllowed, errs.ErrMethod, "The login callback only accepts GET.", nil))
		return
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		f.fail(w, r, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback was malformed.", err))
		return
	}
	if q.err != nil {
		f.providerError(w, r, q)
		return
	}
	// The attempt cookie goes whatever happens next; the spent record
	// makes the state single use in this process even while a first
	// callback with it is still running.
	attempt, ok := f.cfg.Sessions.TakeAttempt(w, r, q.state)
	if ok && !f.spent.claim(q.state, f.cfg.Now()) {
		ok = false
		f.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: callback for a login already being finished or finished")
	}
	if !ok {
		f.unknownState(w, r)
		return
	}
	if err := f.checkIssuer(q); err != nil {
		f.fail(w, r, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback was malformed.", err))
		return
	}
	if q.code == "" {
		f.fail(w, r, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback carried no code.", nil))
		return
	}
	login, e := f.exchange(r.Context(), q.code, attempt)
	if e != nil {
		f.fail(w, r, e)
		return
	}
	user := login.User
	var old *session.Data // the session this login replaces, for its tokens
	if f.cfg.KeepTokens && f.cfg.Revoke != nil {
		old, _ = f.cfg.Sessions.Load(r)
	}
	now := f.cfg.Now()
	// Replace the session wholesale: nothing from before the login survives.
	next := &session.Data{User: user, LoginAt: now, LastSeen: now, IDToken: login.IDToken, SID: login.SID, AuthTimeClaimed: login.AuthTimeClaimed}
	if f.cfg.KeepTokens {
		next.Tokens = login.Tokens
	}
	err = f.cfg.Sessions.Renew(w, r, next)
	if errors.Is(err, errs.ErrCookieTooLarge) && next.IDToken != "" {
		// The ID token only makes the logout better (id_token_hint): a
		// cookie without room for it logs in without it, and the logout
		// then goes to PiPA without id_token_hint.
		f.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: the ID token does not fit the session cookie; logout will go without id_token_hint",
			slog.Int("id_token_bytes", len(next.IDToken)))
		next.IDToken = ""
		err = f.cfg.Sessions.Renew(w, r, next)
	}
	if errors.Is(err, errs.ErrCookieTooLarge) && next.User.Claims != "" {
		if e := f.claimsCookieTooLarge(next); e != nil {
			f.fail(w, r, e)
			return
		}
	}
	if errors.Is(err, errs.ErrSessionStore) {
		f.fail(w, r, errs.StoreUnavailable(err))
		return
	}
	if err != nil {
		f.fail(w, r, errs.New(http.StatusInternalServerError, err, "The session could not be saved.", nil))
		return
	}
	f.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: login", slog.String("user", user.ID))
	if f.cfg.KeepTokens && next.Tokens != nil && next.Tokens.RefreshToken == "" {
		f.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: KeepTokens is set but PiPA issued no refresh token: the session ends when the access token expires (some providers issue one only with the offline_access scope)")
	}
	if old.LoggedIn() && old.Tokens != nil && !sameTokens(old.Tokens, next.Tokens) {
		f.cfg.Revoke(r.Context(), old.Tokens)
	}
	http.Redirect(w, r, returnto.Or(attempt.ReturnTo, "/"), http.StatusSeeOther)
	f.reportNotKept(r, user.ID, login.ClaimsNotKept)
	f.cfg.Events.Emit(r, events.Login, user.ID, nil)
}

// sameTokens reports whether a and b hold the same refresh and access
// tokens.
func sameTokens(a, b *session.Tokens) bool {
	return b != nil && a.RefreshToken == b.RefreshToken && a.AccessToken == b.AccessToken
}

// unknownState answers a callback whose state this browser has no usable
// attempt for: missing, unknown, expired or already used.
func (f *Flow) unknownState(w http.ResponseWriter, r *http.Request) {
	d, err := f.cfg.Sessions.Load(r)
	if errors.Is(err, errs.ErrSessionStore) {
		f.fail(w, r, errs.StoreUnavailable(err))
		return
	}
	if err != nil {
		f.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: no usable session on a callback with an unknown state", slog.String("error", err.Error()))
	}
	if d.LoggedIn() {
		// A replayed or double-clicked callback: keep who is logged in.
		f.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: callback with unknown state for a logged-in browser; sending it home")
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	f.fail(w, r, errs.New(http.StatusBadRequest, errs.ErrInvalidState, "This login link is unknown, expired or already used. Please log in again.", nil))
}

func (f *Flow) providerError(w http.ResponseWriter, r *http.Request, q callbackQuery) {
	status := http.StatusBadRequest
	if q.err.Code == "access_denied" {
		status = http.StatusForbidden
	}
	if err := f.checkIssuer(q); err != nil {
		// An error from another issuer (RFC 9207): not ours to show.
		f.fail(w, r, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback was malformed.", err))
		return
	}
	if _, ok := f.cfg.Sessions.TakeAttempt(w, r, q.state); ok {
		// The state proves this error answers a login this browser started:
		// its code is worth showing.
		f.fail(w, r, errs.New(status, q.err, "PiPA did not complete the login: "+q.err.Code+".", nil))
		return
	}
	// Anyone can craft a link to the callback with error=<any text>: without
	// a matching state, do not echo it.
	f.fail(w, r, errs.New(status, q.err, "The login was not completed.", nil))
}

func (f *Flow) checkIssuer(q callbackQuery) error {
	switch {
	case q.iss == "" && f.cfg.RequireIss:
		return errs.Coded(errs.CodeIssuerMismatch, errors.New("the provider promised an iss parameter and sent none"))
	case q.iss != "" && q.iss != f.cfg.Issuer:
		return errs.Coded(errs.CodeIssuerMismatch, fmt.Errorf("callback iss %q is not the configured issuer", q.iss))
	}
	return nil
}
