package errs

import "errors"

// ErrClaimsTooLarge is wrapped by the refusal of a login (or the end of a
// session at a refresh) whose kept claims do not fit the session.
var ErrClaimsTooLarge = errors.New("pipaauth: the kept claims do not fit the session")

// CodeClaimsTooLarge is the reason code of ErrClaimsTooLarge.
const CodeClaimsTooLarge = "claims_too_large"

// MaxClaimsBytes bounds the kept claims of one session (the text of their
// JSON object) in a server-side store; the session cookie's 4096 bytes bound
// them sooner in cookie mode.
const MaxClaimsBytes = 64 << 10

// ClaimNotKept is the detail an events.ClaimNotKept report carries: the
// name of a claim that came only as a distributed or aggregated reference
// (OpenID Connect Core 5.6.2).
type ClaimNotKept struct{ Name string }

func (e *ClaimNotKept) Error() string {
	return "pipaauth: claim " + e.Name + " came only as a distributed or aggregated reference and was not kept"
}
