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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
	OnError  func(http.ResponseWriter, *http.Request, error) // renders a failure: its errors carry the status and a reason safe to show, which package pipaauth reads

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
	// DPoP, optional, makes a fresh P-256 key per login (kept in the
	// attempt), sends its thumbprint as dpop_jkt, proves it at the token
	// endpoint (Client must be a DPoP transport's) and requires
	// token_type DPoP.
	DPoP bool
	// Push, optional, sends the authorization request's parameters to the
	// pushed authorization request endpoint (RFC 9126) and returns its
	// request_uri; the browser then gets client_id and request_uri only.
	Push   PushFunc
	Now    func() time.Time //
	Logger *slog.Logger     //

	// EndRevokedSID, optional, is called after a login's session with
	// the provider's session id sid was created: when a back-channel
	// logout revoked sid lately, it ends that session (and any other with
	// sid) and reports true, and the login fails. Errors are store errors.
	EndRevokedSID func(ctx context.Context, sid string) (revoked bool, err error)
	// RevokedSubject, optional, reports whether a back-channel logout of
	// the user sub (by sub alone) came after the user signed in at PiPA
	// (signedIn: auth_time, else the ID token's iat): the login is then
	// over before it began.
	RevokedSubject func(ctx context.Context, sub string, iat time.Time) (revoked bool, err error)

	// FormPost asks for response_mode=form_post and reads the response
	// from the POST PiPA's page submits (formpost.go); FormPostOrigins are
	// the origins that POST may come from (lower case, as browsers
	// serialize Origin).
	FormPost        bool
	FormPostOrigins []string
	// StateKeys, optional, sign the start host and return path carried in
	// each state (hoststate.go): the first signs, every one verifies.
	// LoginPath is where a new login starts (LoginHandler), for the page
	// that answers a login started on another host.
	StateKeys [][]byte
	LoginPath string
	// Events, optional, reports outcomes after the response is decided:
	// kind "login" (with the user id) or "login_failed" (with the error)
	// once per start failure and per callback, and "claim_not_kept" (with
	// an error naming the claim) per claim of Claims that came only as a
	// reference. err wraps the sentinel errors of package pipaauth.
	Events func(r *http.Request, kind, userID string, err error)
}

// UserInfoFunc fetches the UserInfo claims of the token source's access
// token (OpenID Connect Core 5.3) and returns them as one JSON object: see
// UserInfoEndpoint.
// For wiring only: applications use package pipaauth.
type UserInfoFunc func(ctx context.Context, ts oauth2.TokenSource) (json.RawMessage, error)

// PushFunc pushes an authorization request (RFC 9126) and returns its
// request_uri, or an error. The login start shows an error made by package
// pipaauth with the status and reason it carries; any other as a failed
// push, 502 wrapping pipaauth.ErrExchange.
// For wiring only: applications use package pipaauth.
type PushFunc func(ctx context.Context, params url.Values) (requestURI string, err error)

// Flow starts and finishes logins. It is safe for concurrent use.
// For wiring only: applications use package pipaauth.
type Flow struct {
	cfg     Config
	openid  bool
	refresh refreshes
	spent   *spent
	events  events.Sink // cfg.Events

	redirectHost string // RedirectURL's host (and port), where the callback is served
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
	f := &Flow{cfg: cfg, openid: slices.Contains(cfg.OAuth2.Scopes, oidc.ScopeOpenID), spent: newSpent(cfg.AttemptTTL, maxSpent), events: cfg.Events}
	if u, err := url.Parse(cfg.OAuth2.RedirectURL); err == nil {
		f.redirectHost = strings.ToLower(u.Host)
	}
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
		State:    f.newState(r.Host, returnto.Or(returnTo, "/")),
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
	if f.cfg.FormPost {
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "form_post"))
	}
	if f.cfg.PKCE {
		a.Verifier = oauth2.GenerateVerifier()
		opts = append(opts, oauth2.S256ChallengeOption(a.Verifier))
	}
	if f.cfg.DPoP {
		key, jkt, err := newDPoPKey()
		if err != nil {
			f.fail(w, r, &errs.Error{Status: http.StatusInternalServerError, Reason: "The login could not be started. Please try again in a moment.", Err: err})
			return
		}
		a.DPoPKey = key
		opts = append(opts, oauth2.SetAuthURLParam("dpop_jkt", jkt))
	}
	authURL := f.cfg.OAuth2.AuthCodeURL(a.State, opts...)
	if f.cfg.Push != nil {
		var e *errs.Error
		if authURL, e = f.push(r.Context(), authURL); e != nil {
			f.fail(w, r, e)
			return
		}
	}
	if err := f.cfg.Sessions.StartAttempt(w, r, a); err != nil {
		f.fail(w, r, &errs.Error{Status: http.StatusInternalServerError, Reason: "The login could not be started. Please try again in a moment.", Err: err})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, authURL, http.StatusFound)
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
	f.events.Emit(r, events.LoginFailed, "", e)
}

// ServeHTTP handles PiPA's redirect back to the application.
// For wiring only: applications use package pipaauth.
func (f *Flow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	q, e := f.readResponse(w, r) // formpost.go
	if e != nil {
		f.fail(w, r, e)
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
		f.unknownState(w, r, q.state)
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
	if attempt.Subject != "" {
		// A step-up never switches accounts, nor logs anyone back in: the
		// browser must still be logged in as the user who started it (not
		// logged out, not replaced by another login since).
		d, err := f.cfg.Sessions.Load(r)
		if errors.Is(err, errs.ErrSessionStore) {
			f.fail(w, r, errs.StoreUnavailable(err))
			return
		}
		if !d.LoggedIn() || d.User.ID != attempt.Subject {
			f.fail(w, r, errs.New(http.StatusForbidden, errs.ErrStepUp,
				"You are no longer logged in here as the user who started this sign-in. Please log in again.",
				errors.New("the browser's session is not the step-up attempt's subject")).WithCode(errs.CodeStepUpOtherUser))
			return
		}
	}
	login, e := f.exchange(r.Context(), q.code, attempt)
	if e != nil {
		f.fail(w, r, e)
		return
	}
	user := login.User
	var oldTokens *session.Tokens // the tokens of the session this login replaces
	if f.cfg.KeepTokens && f.cfg.Revoke != nil {
		if old, _ := f.cfg.Sessions.Load(r); old.LoggedIn() {
			oldTokens, _ = f.cfg.Sessions.LoadTokens(r, old) // unusable ones are nobody's to revoke
		}
	}
	now := f.cfg.Now()
	// Replace the session wholesale: nothing from before the login survives.
	next := &session.Data{User: user, LoginAt: now, LastSeen: now, IDToken: login.IDToken, SID: login.SID, AuthTimeClaimed: login.AuthTimeClaimed}
	if f.cfg.KeepTokens {
		next.Tokens = login.Tokens
	}
	err := f.cfg.Sessions.Renew(w, r, next)
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
	revokedCheck := func(ctx context.Context) (bool, error) {
		if f.cfg.EndRevokedSID != nil && next.SID != "" {
			if revoked, err := f.cfg.EndRevokedSID(ctx, next.SID); revoked || err != nil {
				return revoked, err
			}
		}
		// The user's sign-in at PiPA (auth_time; else the ID token's iat):
		// a logout after it ended the PiPA session this login came from.
		signedIn := login.IssuedAt
		if login.AuthTimeClaimed {
			signedIn = login.User.AuthTime
		}
		if f.cfg.RevokedSubject != nil && !signedIn.IsZero() {
			return f.cfg.RevokedSubject(ctx, next.User.ID, signedIn)
		}
		return false, nil
	}
	if f.cfg.EndRevokedSID != nil || f.cfg.RevokedSubject != nil {
		// Checked once the session exists: a back-channel logout of sid
		// (or sub) either marked it before this check, or revokes it after.
		revoked, err := revokedCheck(r.Context())
		if err == nil && revoked {
			err = errs.New(http.StatusUnauthorized, errs.ErrLoginRequired,
				"Your PiPA session ended while you were logging in. Please log in again.",
				errors.New("a back-channel logout revoked the login's sid or user"))
		}
		if err != nil {
			f.cfg.Sessions.Clear(w, r) // the cookie just written goes too
			e := (*errs.Error)(nil)
			if !errors.As(err, &e) {
				e = errs.StoreUnavailable(err)
			}
			f.fail(w, r, e)
			return
		}
	}
	f.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: login", slog.String("user", user.ID))
	if f.cfg.KeepTokens && next.Tokens != nil && next.Tokens.RefreshToken == "" {
		f.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: KeepTokens is set but PiPA issued no refresh token: the session ends when the access token expires (some providers issue one only with the offline_access scope)")
	}
	if oldTokens != nil && !sameTokens(oldTokens, next.Tokens) {
		f.cfg.Revoke(r.Context(), oldTokens)
	}
	http.Redirect(w, r, returnto.Or(attempt.ReturnTo, "/"), http.StatusSeeOther)
	f.reportNotKept(r, user.ID, login.ClaimsNotKept)
	f.events.Emit(r, events.Login, user.ID, nil)
}

// sameTokens reports whether a and b hold the same refresh and access
// tokens.
func sameTokens(a, b *session.Tokens) bool {
	return b != nil && a.RefreshToken == b.RefreshToken && a.AccessToken == b.AccessToken
}

// unknownState answers a callback whose state this browser has no usable
// attempt for: missing, unknown, expired or already used.
func (f *Flow) unknownState(w http.ResponseWriter, r *http.Request, state string) {
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
	if !f.spent.has(state) && f.otherHost(w, r, state) { // hoststate.go
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
