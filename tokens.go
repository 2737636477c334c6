package pipaauth

import (
	"cmp"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/callback"
	"github.com/pipaauth/pipaauth/internal/dpop"
	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/session"
)

// ErrNoTokens is returned by Token when the session holds no tokens:
// Config.KeepTokens is off, or the session predates it.
var ErrNoTokens = errors.New("pipaauth: the session holds no tokens (set Config.KeepTokens)")

// ErrLoginRequired is returned by Token when there is no live session, or
// when PiPA refused to refresh its tokens; the session has then been
// cleared, and the next protected request starts a new login.
var ErrLoginRequired = errs.ErrLoginRequired

// expiryDelta is how early a long-lived access token counts as expired, so
// that it does not expire on its way to the API.
const expiryDelta = 30 * time.Second

// refreshDue reports whether t should be refreshed at now. A token is
// refreshed once its remaining life is below the margin: 30 seconds, or a
// quarter of the token's lifetime when that is shorter. So a token is never
// refreshed before it has lived three quarters of its lifetime (a 20-second
// token after 15 seconds, a 1-hour token 30 seconds before it expires). A
// session from before the lifetime was kept uses the 30 seconds.
func refreshDue(t *session.Tokens, now time.Time) bool {
	if t.Expiry.IsZero() {
		return false
	}
	margin := expiryDelta
	if !t.IssuedAt.IsZero() {
		margin = min(margin, t.Expiry.Sub(t.IssuedAt)/4)
	}
	return !now.Before(t.Expiry.Add(-margin))
}

// maxRefreshChain bounds the refreshes one Token call makes: a refresh
// whose result was kept unsaved (see callback.Flow.KeepUnsaved) may hand
// back tokens that are themselves due.
const maxRefreshChain = 3

// Token returns the access token of r's session, refreshed first when it is
// due: when less than 30 seconds or a quarter of its lifetime is left,
// whichever is shorter (so never before it has lived three quarters of its
// lifetime; its lifetime is expires_in, counted from its arrival by
// Config.Now). The new tokens (with a rotated refresh token) are
// written back to the session through w, so call Token before writing the
// response. Within this process, concurrent requests of one session spend
// the refresh token once and share the result.
//
// A refresh PiPA refuses (an OAuth error such as invalid_grant, whatever the
// HTTP status; a refreshed ID token for another iss or sub) ends the
// session and returns an error wrapping ErrLoginRequired. A refreshed ID
// token is validated like the login's (signature, SigningAlgs, aud, azp,
// exp, iat, nbf with ClockSkew): one that fails another check fails the
// refresh with a 502 wrapping ErrInvalidToken, its tokens unused and the
// session kept. When PiPA's JWKS cannot be fetched (ReasonKeysUnavailable),
// the new tokens are kept and returned, the session's identity stays as it
// was, and a warning says the ID token went unchecked. A network failure,
// a timeout or a 5xx is temporary: the session stays and the error wraps
// ErrExchange. When the refreshed tokens cannot be saved, the error says so
// and the old token is not returned; this process keeps what PiPA issued
// for the next request of the session, and new tokens too large for the
// cookie (ErrCookieTooLarge) end the session. With Config.Claims, a refresh
// that returns an ID token also updates the kept claims (see Config.Claims;
// claims that no longer fit end the session, ErrClaimsTooLarge). It needs
// Config.KeepTokens.
// Errors other than ErrNoTokens are an *Error (errors.As) with the status and
// the reason to show. With LazyDiscovery, a refresh needed before discovery
// succeeded returns an error wrapping ErrDiscovery and leaves the session as
// it was.
//
// With DPoP-bound tokens (Config.DPoP) the token's TokenType is "DPoP": send
// it with a proof of the session's key, as Client does. A DPoP-bound
// session without its key returns an error wrapping ErrNoTokens.
func (a *Auth) Token(w http.ResponseWriter, r *http.Request) (*oauth2.Token, error) {
	tok, _, err := a.tokenAndKey(w, r)
	return tok, err
}

// tokenAndKey is Token, with the tokens' DPoP key (nil for Bearer tokens).
func (a *Auth) tokenAndKey(w http.ResponseWriter, r *http.Request) (*oauth2.Token, *ecdsa.PrivateKey, error) {
	var o refreshOutcome
	tok, key, err := a.token(w, r, &o, false)
	if a.cfg.OnEvent != nil {
		a.reportToken(r, &o, err)
	}
	return tok, key, publicError(err)
}

// refreshOutcome is what Token did, for its event.
type refreshOutcome struct {
	needed bool          // the access token had expired
	user   string        // the session's user
	took   time.Duration // the refresh call
}

// reportToken emits Token's outcome: refresh or refresh_failed when a
// refresh was needed, session_store_error when the store failed before.
func (a *Auth) reportToken(r *http.Request, o *refreshOutcome, err error) {
	switch {
	case o.needed && err == nil:
		a.emit(r, EventRefresh, o.user, o.took, nil)
	case o.needed:
		a.emit(r, EventRefreshFailed, o.user, o.took, err)
	case errors.Is(err, errs.ErrSessionStore):
		a.emit(r, EventStoreError, o.user, 0, err)
	}
}

// token is Token; with force (RefreshToken) it refreshes whatever the
// expiry, and never hands back the session's own access token from a
// refresh shared with another request. It also returns the tokens' DPoP
// key (nil for Bearer tokens).
func (a *Auth) token(w http.ResponseWriter, r *http.Request, o *refreshOutcome, force bool) (*oauth2.Token, *ecdsa.PrivateKey, error) {
	d, err := a.sessions.Load(r)
	if err != nil && errors.Is(err, errs.ErrSessionStore) {
		return nil, nil, err
	}
	if !d.LoggedIn() {
		return nil, nil, errs.New(http.StatusUnauthorized, errs.ErrLoginRequired, "Please log in.", nil)
	}
	o.user = d.User.ID
	t := a.keptTokens(r, d)
	if t == nil {
		return nil, nil, ErrNoTokens
	}
	key, err := sessionDPoPKey(t)
	if err != nil {
		return nil, nil, err
	}
	tok := &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken, Expiry: t.Expiry}
	if key != nil {
		tok.TokenType = dpop.TokenType
	}
	if !force && !refreshDue(t, a.cfg.Now()) {
		return tok, key, nil
	}
	stale := "" // with force: the access token being replaced
	if force {
		stale = t.AccessToken
	}
	o.needed = true
	p, err := a.provider(r.Context())
	if err != nil {
		return nil, nil, &errs.Error{Status: http.StatusServiceUnavailable, Reason: "PiPA cannot be reached right now. Please try again in a moment.", Err: err}
	}
	var spent []string // refresh tokens this call spent (or found spent in the memo)
	cur := *t
	var fresh, withIDToken *oauth2.Token // withIDToken: the last refresh that returned an ID token
	idToken := ""                        // the newest verified ID token of the refreshes, for id_token_hint
	start := time.Now()
	for range maxRefreshChain {
		if cur.RefreshToken == "" {
			return nil, nil, a.dropSession(w, r, errs.Coded(errs.CodeNoRefreshToken, errors.New("the access token expired and there is no refresh token")))
		}
		spent = append(spent, cur.RefreshToken)
		fresh, err = p.flow.RefreshStale(dpop.WithKey(r.Context(), key), cur.RefreshToken, d.User.ID, stale)
		stale = ""
		o.took = time.Since(start)
		if errors.Is(err, callback.ErrRefreshRefused) {
			return nil, nil, a.dropSession(w, r, err)
		}
		if err != nil {
			return nil, nil, err
		}
		if key != nil && !strings.EqualFold(fresh.TokenType, dpop.TokenType) {
			// The tokens would no longer be bound: a downgrade.
			return nil, nil, a.dropSession(w, r, fmt.Errorf("the refreshed token_type is %q, not DPoP: PiPA did not bind the refreshed tokens to the session's DPoP key", fresh.TokenType))
		}
		if raw := p.flow.RefreshedIDToken(fresh); raw != "" {
			idToken = raw
		}
		if raw, _ := fresh.Extra("id_token").(string); raw != "" {
			withIDToken = fresh
		}
		now := a.cfg.Now()
		cur = session.Tokens{
			AccessToken:  fresh.AccessToken,
			TokenType:    fresh.TokenType,
			RefreshToken: fresh.RefreshToken,
			Expiry:       callback.Expiry(fresh, now),
			IssuedAt:     now,
		}
		if key != nil {
			cur.TokenType, cur.DPoPKey = dpop.TokenType, t.DPoPKey
		}
		if !refreshDue(&cur, now) {
			break // a result kept from an unsaved refresh may be due itself
		}
	}
	cur.DPoPKey = t.DPoPKey // the key the tokens are bound to stays with the session
	next := d.Clone()
	next.Tokens = &cur
	if idToken != "" {
		next.IDToken = idToken // logout sends the newest ID token (OpenID Connect Core 12.2)
	}
	if len(a.cfg.Claims) > 0 || d.User.Claims != "" {
		if err := a.refreshClaims(r, p, next, cmp.Or(withIDToken, fresh)); err != nil {
			return nil, nil, a.dropSession(w, r, err)
		}
	}
	next.LastSeen = a.cfg.Now() // this write-back replaces any idle-timeout slide of this response
	if err := a.sessions.Save(w, r, next); err != nil {
		if errors.Is(err, session.ErrInvalid) {
			// The session was ended (logout) while the refresh ran.
			return nil, nil, errs.New(http.StatusUnauthorized, errs.ErrLoginRequired, "Please log in.", err)
		}
		if errors.Is(err, errs.ErrCookieTooLarge) {
			// The rotated tokens will never fit: end the session cleanly
			// rather than let the next request spend the old token again.
			return nil, nil, a.dropSession(w, r, err)
		}
		// PiPA rotated the refresh token but the session still holds the
		// old one: keep the results for the next request of this session.
		for _, rt := range spent {
			p.flow.KeepUnsaved(rt)
		}
		return nil, nil, fmt.Errorf("pipaauth: the refreshed tokens could not be saved: %w", err)
	}
	if r.Context().Err() != nil {
		// The request ended (the client left, or a deadline) while PiPA
		// rotated the refresh token: a cookie written now may never reach
		// the browser. Keep the results for its next request.
		for _, rt := range spent {
			p.flow.KeepUnsaved(rt)
		}
	}
	// The token as the session keeps it: Expiry by Config.Now (x/oauth2's
	// counts from the wall clock), and the same fields as the next call's.
	return &oauth2.Token{AccessToken: cur.AccessToken, TokenType: cur.TokenType, RefreshToken: cur.RefreshToken, Expiry: cur.Expiry}, key, nil
}

func (a *Auth) dropSession(w http.ResponseWriter, r *http.Request, cause error) error {
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: ending session: tokens cannot be refreshed", slog.String("error", cause.Error()))
	if err := a.sessions.Clear(w, r); err != nil {
		return err
	}
	return errs.New(http.StatusUnauthorized, errs.ErrLoginRequired, "Your PiPA session has ended. Please log in again.", cause)
}

// TokenSource returns an oauth2.TokenSource over Token for the session of
// r: every Token call may refresh and write the session back through w.
func (a *Auth) TokenSource(w http.ResponseWriter, r *http.Request) oauth2.TokenSource {
	return tokenSource{a: a, w: w, r: r}
}

type tokenSource struct {
	a *Auth
	w http.ResponseWriter
	r *http.Request
}

func (ts tokenSource) Token() (*oauth2.Token, error) { return ts.a.Token(ts.w, ts.r) }

// Client returns an *http.Client that calls PiPA's APIs as the user of r,
// with the access token of the session (refreshed as Token does). Make its
// requests before writing the response. It is built on Config.HTTPClient
// (its transport, timeout and redirect policy); when that is nil, on a
// client with a timeout of DefaultClientTimeout (30s) for each request,
// redirects and body included.
//
// A resource server's 401 with error="invalid_token" in a Bearer or DPoP
// WWW-Authenticate challenge (RFC 6750 section 3.1: the token expired early,
// was revoked, or its expiry was never known) makes the client refresh the
// session's tokens (RefreshToken) and send the request once more with the
// new token: once per Client, never in a loop, and never for another 401
// (insufficient_scope, no challenge). A request whose body cannot be sent
// again (a Body without GetBody: http.NewRequest sets GetBody for
// *bytes.Buffer, *bytes.Reader and *strings.Reader bodies) gets the
// refresh but not the retry: its 401 goes back, and the next request
// carries the new token. A refresh that fails is the request's error
// (errors.Is ErrLoginRequired when PiPA refused it and the session ended).
//
// The access token goes only where the request was sent: a redirect to
// another scheme, host or port is refused rather than followed, since
// x/oauth2 would add the token to every hop.
//
// DPoP-bound tokens (Config.DPoP) go as "Authorization: DPoP <token>" with a
// fresh proof per request (htm, htu, ath; the server's nonce once it sent
// one); a 401 with WWW-Authenticate: DPoP error="use_dpop_nonce" is retried
// once with the DPoP-Nonce it carries, when the request has no body or one
// that can be sent again (GetBody, as http.NewRequest sets for in-memory
// bodies).
func (a *Auth) Client(w http.ResponseWriter, r *http.Request) *http.Client {
	base := a.apiClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	holder := &keyHolder{}
	c := &http.Client{
		// The DPoP transport proves the key of the token the outer one
		// sets (none for Bearer tokens), retrying a use_dpop_nonce once;
		// the outer one refreshes once on invalid_token.
		Transport: &bearerTransport{a: a, w: w, r: r, holder: holder,
			base: &dpop.Transport{Base: base, Nonces: &a.nonces, Now: a.cfg.Now, Key: holder.get}},
		Jar:     a.apiClient.Jar,
		Timeout: a.apiClient.Timeout,
	}
	next := a.apiClient.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if first := via[0].URL; req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
			return fmt.Errorf("pipaauth: not following a redirect from %s to another origin %s with the user's access token", first.Host, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("pipaauth: stopped after 10 redirects")
		}
		return nil
	}
	return c
}
