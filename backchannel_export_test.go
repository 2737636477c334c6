package pipaauth

// Revoker is what BackChannelLogoutHandler ends sessions and remembers jti
// values through, for the tests of package pipaauth_test.
type Revoker = revoker

// SetRevoker makes a's BackChannelLogoutHandler use r instead of the session
// Manager. Call it before serving.
func SetRevoker(a *Auth, r Revoker) { a.bcLogout.revoker = r }
