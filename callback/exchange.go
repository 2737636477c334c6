package callback

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/dpop"
	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/httpx"
	"github.com/pipaauth/pipaauth/session"
)

const (
	maxSubject = 255 // OpenID Connect Core 1.0, section 2: sub is at most 255 ASCII characters
	maxEmail   = 254 // RFC 5321's path limit, less the angle brackets
)

// maxNumericDate is 9999-12-31T23:59:59Z, the last second time.Time
// encodes in JSON: the bound on auth_time and nbf.
const maxNumericDate = 253402300799

// loginResult is what a finished code exchange tells about the login: who
// logged in and what the session keeps.
type loginResult struct {
	User    session.User    // ID, Email, EmailVerified and AuthTime
	Tokens  *session.Tokens // the provider's tokens
	IDToken string          // the raw ID token; "" without the openid scope
	// AuthTimeClaimed reports that User.AuthTime is the ID token's
	// auth_time (else it is the login time).
	AuthTimeClaimed bool
	SID             string    // the ID token's sid claim; "" when it has none
	IssuedAt        time.Time // the ID token's iat; zero without the openid scope
	// ClaimsNotKept names the claims of Config.Claims that came only as
	// distributed or aggregated references (OpenID Connect Core 5.6.2).
	ClaimsNotKept []string
}

// exchange trades the code for tokens and returns who logged in. Its errors
// never hold the code or a token.
func (f *Flow) exchange(ctx context.Context, code string, a session.Attempt) (*loginResult, *errs.Error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.cfg.Client)
	ctx = oidc.ClientContext(ctx, f.cfg.Client)

	if len(a.DPoPKey) > 0 {
		key, err := dpop.Parse(a.DPoPKey)
		if err != nil {
			return nil, errs.New(http.StatusInternalServerError, errs.ErrExchange, "The login could not be finished. Please log in again.", err)
		}
		ctx = dpop.WithKey(ctx, key) // the token request (and UserInfo) prove it
	}
	var opts []oauth2.AuthCodeOption
	if a.Verifier != "" {
		opts = append(opts, oauth2.VerifierOption(a.Verifier))
	}
	tok, err := f.cfg.OAuth2.Exchange(ctx, code, opts...)
	if err != nil {
		return nil, exchangeError(err)
	}
	if err := readable(tok); err != nil {
		return nil, unreadable(err)
	}
	if err := checkTokenType(tok, len(a.DPoPKey) > 0); err != nil {
		return nil, refused(err)
	}
	userID, err := tokenUserID(tok)
	if errors.Is(err, errForm) {
		return nil, unreadable(err)
	}
	if err != nil {
		return nil, refused(err)
	}
	now := f.cfg.Now()
	login := &loginResult{User: session.User{ID: userID}}
	if f.openid {
		idt, err := f.verifyIDToken(ctx, tok, a.Nonce, userID)
		if err != nil {
			return nil, idTokenError(err)
		}
		if e := f.checkStepUp(idt, a, now); e != nil {
			return nil, e
		}
		login.User, login.IDToken, login.SID, login.IssuedAt = idt.User, idt.Raw, idt.SID, idt.IssuedAt
		login.AuthTimeClaimed = !idt.User.AuthTime.IsZero()
		if login.User.AuthTime.After(now) {
			// Up to ClockSkew ahead (checked above): PiPA's clock runs
			// ahead. Recorded as now, so that a step-up's window is maxAge
			// plus one ClockSkew, not two.
			login.User.AuthTime = now
		}
		if e := f.loginClaims(ctx, tok, idt, login); e != nil {
			return nil, e
		}
	} else if userID == "" {
		return nil, refused(errors.New("the token response has no user_id and no ID token was asked for"))
	} else if a.MaxAge > 0 {
		// Only an ID token's auth_time can prove a recent sign-in.
		return nil, stepUpRefused(errors.New("a step-up login needs the openid scope"))
	}
	if len(login.User.ID) > maxSubject {
		return nil, refused(fmt.Errorf("user id is %d bytes, more than %d", len(login.User.ID), maxSubject))
	}
	if login.User.AuthTime.IsZero() {
		login.User.AuthTime = now
	}
	login.Tokens = &session.Tokens{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		Expiry:       Expiry(tok, now),
		IssuedAt:     now,
	}
	if len(a.DPoPKey) > 0 {
		login.Tokens.TokenType, login.Tokens.DPoPKey = dpop.TokenType, a.DPoPKey
	}
	return login, nil
}

func (f *Flow) wantsEmail() bool { return slices.Contains(f.cfg.OAuth2.Scopes, "email") }

// userInfo fetches PiPA's UserInfo (OpenID Connect Core 5.3) and returns
// its claims; with wantEmail it also fills u's email from it, for providers
// that put it there rather than in the ID token (Core 5.4). The answer
// counts only when its sub is u.ID, the ID token's (Core 5.3.2): another sub
// refuses the login. With DPoP (a key in ctx) the token goes as a DPoP
// token, with a proof added by the client's transport.
func (f *Flow) userInfo(ctx context.Context, tok *oauth2.Token, u *session.User, wantEmail bool) (rawClaims, *errs.Error) {
	tt := "Bearer"
	if dpop.KeyFrom(ctx) != nil {
		tt = dpop.TokenType
	}
	info, err := f.cfg.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, TokenType: tt}))
	if err != nil {
		var k *keysUnavailable
		var st *userInfoStatus
		switch {
		case errors.As(err, &k): // a signed answer whose key could not be had
			return nil, k.e
		case errors.Is(err, context.DeadlineExceeded) || isNetworkError(err):
			return nil, requestError("userinfo endpoint", err)
		case errors.As(err, &st) && (st.code == http.StatusUnauthorized || st.code == http.StatusForbidden):
			return nil, errs.New(http.StatusBadGateway, errs.ErrExchange, "PiPA refused to give this application your account details. Please log in again.",
				err).WithCode(errs.CodeUserInfoInvalid)
		case errors.Is(err, errUserInfoSignature):
			return nil, refused(err).WithCode(errs.CodeUserInfoInvalid)
		}
		_, brief := httpx.Brief(err) // no body in these errors; bounded all the same
		return nil, unreadable(fmt.Errorf("userinfo endpoint: %w", brief))
	}
	var c struct {
		Sub           *string         `json:"sub"`
		Email         json.RawMessage `json:"email"`
		EmailVerified json.RawMessage `json:"email_verified"`
	}
	if _, err := decodeExact(func(v any) error { return json.Unmarshal(info, v) }, &c, "sub", "email", "email_verified"); err != nil {
		return nil, unreadable(fmt.Errorf("userinfo: %w", err))
	}
	if c.Sub == nil || *c.Sub != u.ID {
		return nil, refused(errUserInfoOtherSub).WithCode(errs.CodeUserInfoInvalid)
	}
	var all rawClaims
	if len(f.cfg.Claims) > 0 {
		if err := json.Unmarshal(info, &all); err != nil {
			return nil, unreadable(fmt.Errorf("userinfo: %w", err))
		}
	}
	if !wantEmail {
		return all, nil
	}
	var email string
	if len(c.Email) > 0 && string(c.Email) != "null" {
		if err := json.Unmarshal(c.Email, &email); err != nil {
			return nil, unreadable(errors.New("userinfo email is not a string"))
		}
	}
	if email == "" {
		return all, nil // no email anywhere: log in without one
	}
	if !validEmail(email) {
		return nil, errs.New(http.StatusBadRequest, errs.ErrInvalidToken, "PiPA's answer did not pass verification. Please log in again.", errors.New("userinfo email is malformed")).WithCode(errs.CodeUserInfoInvalid)
	}
	u.Email = email
	// Only a JSON true verifies; a string "true" or anything else does not.
	u.EmailVerified = string(c.EmailVerified) == "true"
	return all, nil
}

// Expiry returns when tok's access token expires, counted from now by the
// configured clock (x/oauth2 counts from the wall clock): zero when the
// provider gave no expires_in (or 0).
// For wiring only: applications use package pipaauth.
func Expiry(tok *oauth2.Token, now time.Time) time.Time {
	switch {
	case tok.ExpiresIn > 0:
		return now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case tok.ExpiresIn == 0 && !tok.Expiry.IsZero(): // form-encoded responses set only Expiry
		return tok.Expiry
	}
	return time.Time{}
}

// readable refuses a token response whose expires_in cannot mean anything:
// a negative lifetime. (A fractional or non-numeric one never gets here:
// x/oauth2 cannot decode the response at all, which exchangeError reports as
// an unreadable answer.)
func readable(tok *oauth2.Token) error {
	if tok.ExpiresIn < 0 {
		return fmt.Errorf("expires_in is negative (%d)", tok.ExpiresIn)
	}
	return nil
}

// checkStepUp applies a step-up attempt's conditions to the ID token of its
// login: an auth_time (OpenID Connect Core 3.1.2.1 requires it when max_age
// was sent; providers may ignore max_age, so the claim is what counts) no
// older than the attempt's MaxAge plus ClockSkew, and, when the attempt
// names a subject, the same user.
func (f *Flow) checkStepUp(idt *idToken, a session.Attempt, now time.Time) *errs.Error {
	if a.MaxAge <= 0 {
		return nil
	}
	if a.Subject != "" && idt.User.ID != a.Subject {
		return errs.New(http.StatusForbidden, errs.ErrStepUp,
			"You signed in at PiPA as another user than the one logged in here. To switch accounts, log out first.",
			errors.New("the step-up login's sub is not the session's")).WithCode(errs.CodeStepUpOtherUser)
	}
	switch at := idt.User.AuthTime; {
	case at.IsZero():
		return stepUpRefused(errors.New("the step-up login's ID token has no auth_time"))
	case now.Sub(at) > a.MaxAge+f.cfg.ClockSkew:
		return stepUpRefused(fmt.Errorf("the step-up login's auth_time is %s old, more than max_age %s plus the clock skew %s",
			now.Sub(at).Truncate(time.Second), a.MaxAge, f.cfg.ClockSkew))
	}
	return nil
}

func stepUpRefused(err error) *errs.Error {
	return errs.New(http.StatusUnauthorized, errs.ErrStepUp,
		"PiPA did not confirm a recent sign-in, which this page needs. Please try again.", err).WithCode(errs.CodeStepUpNotRecent)
}

func refused(err error) *errs.Error {
	return errs.New(http.StatusBadRequest, errs.ErrInvalidToken, "PiPA's answer did not pass verification. Please log in again.", err)
}

// reasonUnreadable is the safe reason for an answer PiPA did send that this
// package cannot use: a wrong content type, malformed JSON, a fractional or
// negative expires_in, a body over the size cap.
const reasonUnreadable = "PiPA sent an answer this application cannot read. Please try again later."

func unreadable(err error) *errs.Error {
	return errs.New(http.StatusBadGateway, errs.ErrExchange, reasonUnreadable, err).WithCode(errs.CodeUnreadable)
}

// exchangeError describes a failed token request without the response body,
// which is the provider's to fill.
func exchangeError(err error) *errs.Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		detail := fmt.Errorf("token endpoint answered %d %q", status, re.ErrorCode)
		if (status >= 400 && status < 500) || (re.ErrorCode != "" && !temporaryCode(re.ErrorCode)) {
			// An OAuth error body is PiPA's answer whatever the status line
			// (some providers send errors with 200).
			return errs.New(http.StatusBadRequest, errs.ErrExchange, "PiPA refused the login code. Please log in again.", detail).WithCode(errs.CodeExchangeRefused)
		}
		return errs.New(http.StatusBadGateway, errs.ErrExchange, "PiPA's token endpoint failed. Please try again later.", detail)
	}
	return requestError("token endpoint", err)
}

// temporaryCode reports whether an OAuth error code says "try again later"
// (RFC 6749 4.1.2.1 defines both for the authorization endpoint; providers
// send them from the token endpoint too).
func temporaryCode(code string) bool {
	return code == "server_error" || code == "temporarily_unavailable"
}

// requestError classifies the failure of a request that got no OAuth answer:
// a timeout, a network failure ("could not be reached"), or an answer that
// arrived but cannot be read.
func requestError(endpoint string, err error) *errs.Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errs.New(http.StatusGatewayTimeout, errs.ErrExchange, "PiPA did not answer in time. Please try again later.", context.DeadlineExceeded)
	}
	if isNetworkError(err) {
		return errs.New(http.StatusBadGateway, errs.ErrExchange, "PiPA's "+endpoint+" could not be reached. Please try again later.", err)
	}
	return unreadable(err)
}

// isNetworkError reports whether err is a transport failure: no connection,
// a connection cut, or a body that broke off. x/oauth2 reports a failed body
// read only as text ("cannot fetch token: ..."). A body over httpx's cap is
// an answer (x/oauth2 stops reading at the same size and fails to parse the
// rest; go-oidc's UserInfo returns httpx.ErrBodyTooLarge): not a network
// failure.
func isNetworkError(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.HasPrefix(err.Error(), "oauth2: cannot fetch token:")
}

// errForm is tokenUserID's answer to a response that is not JSON.
var errForm = errors.New("the token response is form-encoded (or text/plain), not JSON")

// tokenUserID returns the token response's user_id as a string: a JSON string
// as is, a JSON number as its integer digits. x/oauth2 decodes numbers to
// float64, so one beyond 2^53-1 may already be rounded: it is refused rather
// than guessed. An absent user_id gives "".
func tokenUserID(tok *oauth2.Token) (string, error) {
	// A form-encoded response gives "" for any absent key, a JSON one nil:
	// ask for a key no response has to tell them apart. RFC 6749 (5.1)
	// requires JSON, and x/oauth2 reads form values through number parsing
	// ("007" and "7.0" both become 7), so a form response is refused.
	if tok.Extra("\x00") != nil {
		return "", errForm
	}
	switch v := tok.Extra("user_id").(type) {
	case nil:
		return "", nil
	case string:
		if v == "" {
			return "", errors.New("user_id is an empty string")
		}
		return v, nil
	case float64:
		if v != math.Trunc(v) || v < 0 || v > 1<<53-1 {
			return "", errors.New("user_id is a number that is not an integer in 0..2^53-1 and cannot be read exactly")
		}
		return strconv.FormatInt(int64(v), 10), nil
	default:
		return "", fmt.Errorf("user_id is a JSON %T, want a string or an integer", v)
	}
}

// decodeExact decodes the claims that claims (an IDToken's or UserInfo's
// Claims method) yields into dst, matching the names listed exactly:
// encoding/json matches struct fields ignoring case, but claim names are
// case-sensitive (RFC 7519 section 4), so a claim "EMAIL", which a user may
// be able to set at some providers, must never count as "email". It
// returns every claim, by exact name.
func decodeExact(claims func(any) error, dst any, names ...string) (rawClaims, error) {
	var all rawClaims
	if err := claims(&all); err != nil {
		return nil, err
	}
	keep := make(rawClaims, len(names))
	for _, n := range names {
		if v, ok := all[n]; ok {
			keep[n] = v
		}
	}
	b, err := json.Marshal(keep)
	if err != nil {
		return nil, err
	}
	return all, json.Unmarshal(b, dst)
}

// exactString reports whether all holds name, exactly so named, as the
// JSON string want.
func exactString(all rawClaims, name, want string) bool {
	var v string
	return json.Unmarshal(all[name], &v) == nil && v == want
}

// idClaims are the claims read beyond what go-oidc checks.
type idClaims struct {
	AZP           *string         `json:"azp"`
	Email         *string         `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	NotBefore     *float64        `json:"nbf"`
	AuthTime      *float64        `json:"auth_time"`
	SID           *string         `json:"sid"`
}

// idToken is what a verified ID token tells: the user (with AuthTime when
// the token has auth_time), the raw token and its sid.
type idToken struct {
	Raw      string
	User     session.User
	SID      string
	Expiry   time.Time
	IssuedAt time.Time

	claims rawClaims // the whole payload, when Config.Claims names any
}

// verifyIDToken checks the ID token of a code exchange: go-oidc for
// signature, iss and aud; this package for exp, nbf, iat and auth_time
// (each with ClockSkew either way), nonce, sub, aud, azp, at_hash and
// user_id agreement.
func (f *Flow) verifyIDToken(ctx context.Context, tok *oauth2.Token, nonce, userID string) (*idToken, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, errors.New("the token response has no id_token although the openid scope was asked for")
	}
	idt, c, err := f.checkIDToken(ctx, raw, tok.AccessToken, true)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, errs.Coded(errs.CodeNonceMismatch, errors.New("id_token nonce does not match the login attempt"))
	}
	if userID != "" && userID != idt.Subject {
		return nil, errors.New("the token response's user_id differs from the id_token's sub")
	}
	out := &idToken{Raw: raw, User: session.User{ID: idt.Subject}, Expiry: idt.Expiry, IssuedAt: idt.IssuedAt}
	if len(f.cfg.Claims) > 0 {
		if out.claims, err = idTokenClaims(idt); err != nil {
			return nil, err
		}
	}
	if c.SID != nil {
		if len(*c.SID) > maxField {
			return nil, fmt.Errorf("id_token sid is %d bytes, more than %d", len(*c.SID), maxField)
		}
		out.SID = *c.SID
	}
	if c.AuthTime != nil {
		out.User.AuthTime = time.Unix(int64(*c.AuthTime), 0)
	}
	if c.Email != nil && *c.Email != "" {
		if !validEmail(*c.Email) {
			return nil, errors.New("id_token email is malformed")
		}
		out.User.Email = *c.Email
		// Only a JSON true verifies; a string "true" or anything else does not.
		out.User.EmailVerified = string(c.EmailVerified) == "true"
	}
	return out, nil
}

// maxField bounds the sid claim as the session bounds its fields.
const maxField = 2048

// checkIDToken runs the checks every ID token gets, at login and at refresh:
// signature, iss and aud (go-oidc), sub, every aud this client, azp, at_hash.
// With times, also exp, iat, nbf and auth_time: the verifier skips go-oidc's
// exp check (it has no leeway), so exp is checked here with ClockSkew, and
// so is nbf, which go-oidc checks only with exp. Login and refresh both
// check times (a refreshed ID token is validated like the login's).
func (f *Flow) checkIDToken(ctx context.Context, raw, accessToken string, times bool) (*oidc.IDToken, *idClaims, error) {
	idt, err := f.verify(ctx, raw)
	if err != nil {
		return nil, nil, err
	}
	if idt.Subject == "" {
		return nil, nil, errors.New("id_token has no sub")
	}
	var c idClaims
	all, err := decodeExact(idt.Claims, &c, "azp", "email", "email_verified", "nbf", "auth_time", "sid")
	if err != nil {
		return nil, nil, fmt.Errorf("id_token claims: %w", err)
	}
	// go-oidc decodes sub and iss with encoding/json, which matches names
	// ignoring case: the payload must name them exactly as well.
	if !exactString(all, "sub", idt.Subject) || !exactString(all, "iss", idt.Issuer) {
		return nil, nil, errors.New("id_token sub or iss is not spelled exactly so (claim names are case-sensitive, RFC 7519 section 4)")
	}
	for _, t := range []struct {
		name string
		v    *float64
	}{{"auth_time", c.AuthTime}, {"nbf", c.NotBefore}} {
		// Before converting to time.Time: 1e300 overflows int64, and a
		// year past 9999 cannot be JSON-encoded (User.AuthTime).
		if t.v != nil && !(*t.v >= 0 && *t.v <= maxNumericDate) {
			return nil, nil, fmt.Errorf("id_token %s %g is out of range (0 to the year 9999)", t.name, *t.v)
		}
	}
	now, skew := f.cfg.Now(), f.cfg.ClockSkew
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
	switch {
	case !times:
	case !now.Before(idt.Expiry.Add(skew)): // also a missing exp (zero)
		if idt.Expiry.IsZero() {
			return nil, nil, errors.New("id_token has no exp")
		}
		return nil, nil, errs.Coded(errs.CodeIDTokenExpired, fmt.Errorf("id_token expired at %s (clock skew tolerance %s)", stamp(idt.Expiry), skew))
	case idt.IssuedAt.IsZero():
		return nil, nil, errors.New("id_token has no iat")
	case idt.IssuedAt.After(now.Add(skew)):
		return nil, nil, fmt.Errorf("id_token iat %s is in the future", stamp(idt.IssuedAt))
	case c.NotBefore != nil && time.Unix(int64(*c.NotBefore), 0).After(now.Add(skew)):
		return nil, nil, fmt.Errorf("id_token nbf %s is in the future", stamp(time.Unix(int64(*c.NotBefore), 0)))
	case c.AuthTime != nil && time.Unix(int64(*c.AuthTime), 0).After(now.Add(skew)):
		return nil, nil, fmt.Errorf("id_token auth_time %s is in the future", stamp(time.Unix(int64(*c.AuthTime), 0)))
	case c.AuthTime != nil && time.Unix(int64(*c.AuthTime), 0).After(idt.IssuedAt.Add(skew)):
		// A sign-in after the token that reports it was issued.
		return nil, nil, fmt.Errorf("id_token auth_time %s is after its iat %s", stamp(time.Unix(int64(*c.AuthTime), 0)), stamp(idt.IssuedAt))
	}
	clientID := f.cfg.OAuth2.ClientID
	for _, aud := range idt.Audience {
		if aud != clientID {
			// OpenID Connect Core 3.1.3.7: reject audiences the client does not trust.
			return nil, nil, fmt.Errorf("id_token audience %q is not this client", aud)
		}
	}
	if c.AZP != nil && *c.AZP != clientID {
		return nil, nil, fmt.Errorf("id_token azp %q is not this client", *c.AZP)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return nil, nil, fmt.Errorf("id_token at_hash: %w", err)
		}
	}
	return idt, &c, nil
}

// validEmail accepts what could be an address: at most 254 bytes, one or
// more characters either side of an @, no spaces or control characters.
func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if len(s) > maxEmail || at < 1 || at == len(s)-1 {
		return false
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}
