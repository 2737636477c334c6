// Package errs holds the errors that pipaauth's packages share, so that
// sub-packages never import the root package. The root re-exports them.
package errs

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Every failure the package reports wraps one of them, so
// callers can use errors.Is; the root package re-exports each one.
var (
	ErrConfig          = errors.New("pipaauth: invalid configuration")
	ErrDiscovery       = errors.New("pipaauth: provider discovery failed")
	ErrInvalidState    = errors.New("pipaauth: missing, unknown, expired or already used state")
	ErrInvalidCallback = errors.New("pipaauth: malformed callback request")
	ErrExchange        = errors.New("pipaauth: token request failed")
	ErrInvalidToken    = errors.New("pipaauth: ID token or token response refused")
	ErrCookieTooLarge  = errors.New("pipaauth: session cookie would exceed 4096 bytes")
	ErrSessionStore    = errors.New("pipaauth: session store unavailable")
	ErrForbidden       = errors.New("pipaauth: user not allowed")
	ErrMethod          = errors.New("pipaauth: method not allowed")
	ErrCrossOrigin     = errors.New("pipaauth: cross-origin request refused")
	ErrLoginRequired   = errors.New("pipaauth: login required")
	ErrStepUp          = errors.New("pipaauth: step-up login refused")
)

// Error is what the handlers hand to an error handler: an HTTP status, a short
// reason that is safe to show to the user, and the cause, which may hold
// internal detail and is for logs only.
type Error struct {
	Status int    // HTTP status the default handler answers with
	Reason string // short, safe to show: never holds codes, tokens or internal errors
	Err    error  // the cause; wraps one of the sentinel errors
	// Code is a stable reason code for events (see reasons.go), set where
	// the error is created when its sentinel covers causes that operators
	// want apart; "" lets the sentinel decide.
	Code string
	// Retry, when set, is the same-origin URL (path and query) that starts
	// a new login that may fix the error, for the error page's link.
	Retry string
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "pipaauth: " + e.Reason
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New builds an *Error whose cause wraps sentinel with detail.
func New(status int, sentinel error, reason string, detail error) *Error {
	err := sentinel
	if detail != nil {
		err = fmt.Errorf("%w: %w", sentinel, detail)
	}
	return &Error{Status: status, Reason: reason, Err: err}
}

// ProviderError is an error the provider sent back to the callback instead of
// a code (RFC 6749 section 4.1.2.1). Its fields come from the query string of
// a request anyone can forge: show them escaped, never trust them.
type ProviderError struct {
	Code        string // the "error" parameter, for example "access_denied"
	Description string // the "error_description" parameter, may be empty
	URI         string // the "error_uri" parameter, may be empty
}

func (e *ProviderError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("pipaauth: provider returned error %q: %s", e.Code, e.Description)
	}
	return fmt.Sprintf("pipaauth: provider returned error %q", e.Code)
}

// StatusOf returns the HTTP status an error maps to: the Status of an *Error,
// else 500.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		return e.Status
	}
	return http.StatusInternalServerError
}

// StoreUnavailable is the answer to a request whose session store call
// failed or timed out (err wraps ErrSessionStore): 503, and a reason that
// asks the user to try again.
func StoreUnavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Reason: "Sessions are unavailable right now. Please try again in a moment.", Err: err}
}
