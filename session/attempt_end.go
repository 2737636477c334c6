package session

import "net/http"

// EndAttempts deletes, in w, every login attempt cookie r carries (up to
// the first 32 names, as StartAttempt reads them): a logout ends the
// browser's logins in flight too, so that a callback still pending (a tab
// restored later) cannot log the user back in (OpenID Connect RP-Initiated
// Logout 1.0 section 2; OWASP ASVS V3.3.1). The session is not touched.
// For wiring only: applications use package pipaauth.
func (m *Manager) EndAttempts(w http.ResponseWriter, r *http.Request) {
	j := m.attempts
	for _, c := range j.carriedAttempts(r) {
		w.Header().Add("Set-Cookie", j.cookie(c.name, "", -1).String())
	}
}
