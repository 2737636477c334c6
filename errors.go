package pipaauth

import "github.com/pipaauth/pipaauth/internal/errs"

// Sentinel errors. Every error this package returns or hands to
// Config.ErrorHandler wraps one of them: test with errors.Is.
var (
	ErrConfig          = errs.ErrConfig          // New: a Config field is missing or wrong
	ErrDiscovery       = errs.ErrDiscovery       // New (with LazyDiscovery: a login, callback or refresh, as a 503): the issuer's discovery document could not be used
	ErrInvalidState    = errs.ErrInvalidState    // callback: state missing, unknown, expired or already used
	ErrInvalidCallback = errs.ErrInvalidCallback // callback: malformed query (repeated parameters, no code, wrong iss)
	ErrExchange        = errs.ErrExchange        // callback: the token request failed or was refused
	ErrInvalidToken    = errs.ErrInvalidToken    // callback: the token response or ID token failed verification
	ErrCookieTooLarge  = errs.ErrCookieTooLarge  // the session would not fit a 4096-byte cookie
	ErrSessionStore    = errs.ErrSessionStore    // the session store failed or timed out
	ErrForbidden       = errs.ErrForbidden       // RequireUser: logged in, but not allowed
	ErrMethod          = errs.ErrMethod          // a handler was called with a method it does not serve
	ErrCrossOrigin     = errs.ErrCrossOrigin     // LogoutHandler: a POST from another site
)

// Error is what the handlers pass to Config.ErrorHandler: an HTTP status, a
// short Reason that is safe to show, and the cause (for logs only: it may
// name internal details, though never a secret, code or token).
type Error = errs.Error

// ProviderError is the error PiPA sent back to the callback instead of a code,
// such as "access_denied" when the user declined. Its fields come from a
// query string anyone can forge: escape them before showing them.
type ProviderError = errs.ProviderError
