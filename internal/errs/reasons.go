package errs

import "errors"

// Reason codes: the stable, machine-readable causes that Config.OnEvent
// reports (the root re-exports them as Reason*). Most are derived from the
// sentinel an error wraps; the codes below are set where the error is
// created, for causes that share a sentinel but that operators want apart.
const (
	CodeIssuerMismatch  = "issuer_mismatch"     // the callback's iss is not the issuer, or missing although promised (RFC 9207)
	CodeNonceMismatch   = "nonce_mismatch"      // the ID token's nonce is not the login attempt's
	CodeExchangeRefused = "exchange_refused"    // the token endpoint answered 4xx to the code exchange
	CodeNoRefreshToken  = "no_refresh_token"    // the access token expired and the session holds no refresh token
	CodeIDTokenExpired  = "id_token_expired"    // the ID token's exp is past, beyond the clock skew
	CodeStepUpNotRecent = "step_up_not_recent"  // a step-up's ID token has no auth_time, or one older than the page's maxAge
	CodeStepUpOtherUser = "step_up_other_user"  // a step-up logged in another user than the session's
	CodeUnreadable      = "response_unreadable" // PiPA answered, but not in a form this package can read (content type, JSON, expires_in, size)
	CodeUserInfoInvalid = "userinfo_invalid"    // the UserInfo answer was refused, or names another sub, or a malformed email
	CodeKeysUnavailable = "keys_unavailable"    // the provider's JWKS could not be fetched (5xx, timeout, unreachable, no usable key)
)

// WithCode sets e's reason code and returns e.
func (e *Error) WithCode(code string) *Error {
	e.Code = code
	return e
}

// Coded returns err carrying a reason code, for a cause that is wrapped
// further (as the detail of New) before it is reported.
func Coded(code string, err error) error {
	return &Error{Code: code, Err: err}
}

// CodeOf returns the first reason code set on an *Error in err's chain,
// outermost first, or "".
func CodeOf(err error) string {
	var e *Error
	for errors.As(err, &e) {
		if e.Code != "" {
			return e.Code
		}
		err = e.Err
	}
	return ""
}
