package pipaauth

import (
	"errors"
	"net/http"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// Sentinel errors. Every error this package returns or hands to
// Config.ErrorHandler wraps one of them: test with errors.Is.
var (
	ErrConfig          = errs.ErrConfig          // New: a Config field is missing or wrong
	ErrDiscovery       = errs.ErrDiscovery       // New (with LazyDiscovery: a login, callback or refresh, as a 503): the issuer's discovery document could not be used
	ErrInvalidState    = errs.ErrInvalidState    // callback: state missing, unknown, expired or already used
	ErrInvalidCallback = errs.ErrInvalidCallback // callback: malformed query (repeated parameters, no code, wrong iss)
	ErrExchange        = errs.ErrExchange        // callback (code exchange, UserInfo) or Token (refresh): the request to PiPA failed, was refused or could not be read
	ErrInvalidToken    = errs.ErrInvalidToken    // callback or Token (refresh): the token response or ID token failed verification
	ErrCookieTooLarge  = errs.ErrCookieTooLarge  // the session would not fit a 4096-byte cookie
	ErrSessionStore    = errs.ErrSessionStore    // the session store failed or timed out
	ErrForbidden       = errs.ErrForbidden       // RequireUser: logged in, but not allowed
	ErrStepUp          = errs.ErrStepUp          // callback of a RequireRecentLogin login: no recent auth_time, or another user (the session is left as it was); LoginHandler: a malformed max_age
	ErrMethod          = errs.ErrMethod          // a handler was called with a method it does not serve
	ErrCrossOrigin     = errs.ErrCrossOrigin     // LogoutHandler and LoginHandler: a POST (any unsafe method) from another site, or over http to an https application
)

// Error is what the handlers pass to Config.ErrorHandler when they refuse a
// request, and what Token returns when it cannot give a token. Read it with
// errors.As:
//
//	var e *pipaauth.Error
//	if errors.As(err, &e) { status, reason = e.Status, e.Reason }
type Error struct {
	// Status is the HTTP status to answer with: 400 for a malformed or
	// stale callback, a login PiPA refused or a malformed LoginHandler
	// max_age; 401 when a login is required, or when a step-up's ID token
	// shows no recent auth_time (ErrStepUp); 403 when the user declined the
	// login (access_denied), for a user RequireUser refuses, for a step-up
	// by another user (ErrStepUp) and for a cross-site login or logout;
	// 405 for a wrong method; 500 for an internal error; 502 or 504 when
	// PiPA failed (also when its JWKS could not be fetched, or a refreshed
	// ID token failed a check); 503 when the session store did, or, with
	// LazyDiscovery, while PiPA's discovery document is not there yet, or
	// when PiPA's new signing key is not known yet (UnknownKeyInterval).
	Status int
	// Reason is one short sentence for the user, safe to show as is: it
	// never holds a code, a token or an internal error.
	Reason string
	// Err is the cause, for logs only: it wraps one of the Err* sentinels
	// (errors.Is) or, when PiPA refused the login, a *ProviderError
	// (errors.As). It may name internal details, though never a secret,
	// code or token.
	Err error
	// Retry, when not "", is the same-origin URL (a path and query, such
	// as "/login?return_to=%2Freports") of a new login that may fix the
	// error: DefaultErrorHandler links to it instead of the plain login
	// path. Set for a login that started on another host name than
	// RedirectURL's, to log in again on RedirectURL's host and land on the
	// page first asked for.
	Retry string
}

// Error returns the cause's message, for logs; show Reason to users.
func (e *Error) Error() string {
	if e.Err == nil {
		return "pipaauth: " + e.Reason
	}
	return e.Err.Error()
}

// Unwrap returns Err, so that errors.Is and errors.As see the cause.
func (e *Error) Unwrap() error { return e.Err }

// ProviderError is the error PiPA sent back to the callback instead of a
// code (RFC 6749 section 4.1.2.1, OpenID Connect Core section 3.1.2.6), such
// as "access_denied" when the user declined. Its fields come from a query
// string anyone can forge: escape them before showing them, never act on
// them beyond Code.
type ProviderError struct {
	// Code is the "error" parameter: access_denied, login_required,
	// consent_required, interaction_required, invalid_request,
	// server_error, temporarily_unavailable or another the provider sent.
	Code string
	// Description is the "error_description" parameter, for developers;
	// may be empty.
	Description string
	// URI is the "error_uri" parameter, a page about the error; may be
	// empty.
	URI string
}

func (e *ProviderError) Error() string { return (*errs.ProviderError)(e).Error() }

// publicError turns the internal error types the sub-packages report (an
// *errs.Error, with an *errs.ProviderError in its chain) into this package's
// *Error and *ProviderError, so that errors.As works with the types users
// see. The message and the chain (errors.Is) are kept. Any other error is
// returned as is.
func publicError(err error) error {
	ie, ok := err.(*errs.Error)
	if !ok {
		return err
	}
	out := &Error{Status: ie.Status, Reason: ie.Reason, Err: ie.Err, Retry: ie.Retry}
	var pe *errs.ProviderError
	if errors.As(ie.Err, &pe) {
		out.Err = &providerCause{err: ie.Err, pe: (*ProviderError)(pe)}
	}
	return out
}

// providerCause is a cause that holds a provider's refusal: errors.As finds
// the *ProviderError, errors.Is the rest of the chain.
type providerCause struct {
	err error
	pe  *ProviderError
}

func (c *providerCause) Error() string   { return c.err.Error() }
func (c *providerCause) Unwrap() []error { return []error{c.pe, c.err} }

// statusOf returns the Status of the *Error in err's chain, else 500.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		return e.Status
	}
	return http.StatusInternalServerError
}
