package session

import (
	"net/http"
	"time"
)

// ExpiredGrace is how long past the end of a login (Options.Lifetime after
// LoginAt) its session cookie, its ID token cookies and its store record
// are kept, so that a logout right after the login expired can still send
// PiPA the expired session's ID token as id_token_hint (OpenID Connect
// RP-Initiated Logout 1.0, section 2, allows an expired one). The session
// is not live during the grace: Load refuses it as before, only
// LoadExpired returns it.
// For wiring only: applications use package pipaauth.
const ExpiredGrace = time.Hour

// LoadExpired returns the session r carries only when its login has
// expired (idle timeout or Lifetime) less than Lifetime+ExpiredGrace after
// its login: (nil, nil) when r has no session, a live one, one stamped in
// the future or one older than that; errors as
// Load. It exists for the logout handler, which takes the expired
// session's ID token (LoadIDToken) for id_token_hint and clears the
// session; nothing may treat its result as a logged-in user.
// For wiring only: applications use package pipaauth.
func (m *Manager) LoadExpired(r *http.Request) (*Data, error) {
	if r == nil {
		return nil, nil
	}
	d, err := m.backend.load(r)
	if d == nil && err == nil && m.legacy != nil {
		d, err = m.loadLegacy(r)
	}
	if d == nil || err != nil || !d.LoggedIn() {
		return nil, err
	}
	now := m.now()
	if m.userFresh(d, now) || d.LoginAt.After(now.Add(time.Minute)) {
		return nil, nil
	}
	if now.Sub(d.LoginAt) >= m.opt.Lifetime+ExpiredGrace {
		// The browser or the store would have forgotten it by now; a
		// cookie replayed later (securecookie takes it for a day) is not
		// used either.
		return nil, nil
	}
	return d, nil
}
