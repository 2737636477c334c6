package pipaauth

import "time"

// UnknownKeyInterval is how often, at most, a signature that no cached key
// of PiPA's JWKS verifies may make this application fetch the JWKS again,
// per source of tokens, whatever the token's kid: known with a bad
// signature, unknown, or none. There are two sources, each with its own
// bound: tokens PiPA hands over its endpoints (ID tokens at login or
// refresh, signed UserInfo answers), and back-channel logout tokens, which
// anyone may post. Without this bound anyone could make every instance
// fetch PiPA's JWKS once per request; with one bound for both, a forged
// logout token could spend the fetch a login needs after a key rotation.
// A logout token whose unverified iss, aud or events claim cannot pass is
// refused before it reaches the key set. A kid that is in a set fetched less than
// UnknownKeyInterval ago is refused at once as a bad signature. Otherwise a
// key rotation is picked up by the first token that needs it, at most
// UnknownKeyInterval late: a logout token that comes sooner gets 503
// temporarily_unavailable with Retry-After (the provider sends it again); a
// login or refresh waits for the next fetch when its ExchangeTimeout
// allows, and otherwise fails as if the keys were unavailable
// (ReasonKeysUnavailable).
const UnknownKeyInterval = 10 * time.Second
