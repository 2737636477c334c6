package errs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

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

// ClaimsTooLarge is the refusal of a session whose kept claims do not fit:
// which claim is the largest, its size, the session's size against its
// limit, and what to do.
func ClaimsTooLarge(claims string, size, limit int, cookie bool) *Error {
	name, n := largestClaim(claims)
	where, fix := "the session store's record", "keep fewer claims (Config.Claims)"
	if cookie {
		where, fix = "the session cookie", "keep fewer claims (Config.Claims) or keep sessions server-side (Config.SessionStore)"
	}
	reason := fmt.Sprintf("Your account details are too large for this application's session: the claim %q takes %d bytes, and %s would be %d bytes, more than its limit of %d. The site's administrator can fix this: %s.",
		name, n, where, size, limit, fix)
	return New(http.StatusBadGateway, ErrClaimsTooLarge, reason,
		fmt.Errorf("%s would be %d bytes (limit %d); largest kept claim %q: %d bytes; %s", where, size, limit, name, n, fix)).WithCode(CodeClaimsTooLarge)
}

// largestClaim returns the name and JSON size of the largest member of the
// claims object.
func largestClaim(claims string) (string, int) {
	var c map[string]json.RawMessage
	if json.Unmarshal([]byte(claims), &c) != nil {
		return "", len(claims)
	}
	name, n := "", -1
	for k, v := range c {
		if len(v) > n || (len(v) == n && k < name) {
			name, n = k, len(v)
		}
	}
	return name, n
}
