package pipaauth

import "time"

// UnknownKeyInterval is how often, at most, a signature that no cached key
// of PiPA's JWKS verifies may make this application fetch the JWKS again,
// whatever the token (ID token at login or refresh, back-channel logout
// token) and whatever its kid: known with a bad signature, unknown, or
// none. The back-channel logout endpoint takes anonymous requests, so
// without this bound anyone could make every instance fetch PiPA's JWKS
// once per request. A kid that is in a set fetched less than
// UnknownKeyInterval ago is refused at once as a bad signature. Otherwise a
// key rotation is picked up by the first token that needs it, at most
// UnknownKeyInterval late: a logout token that comes sooner gets 503
// temporarily_unavailable with Retry-After (the provider sends it again); a
// login or refresh waits for the next fetch when its ExchangeTimeout
// allows, and otherwise fails as if the keys were unavailable
// (ReasonKeysUnavailable).
const UnknownKeyInterval = 10 * time.Second
