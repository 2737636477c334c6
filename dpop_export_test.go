package pipaauth

import "net/http"

// DropDPoPKey rewrites r's session without its DPoP key, as a session
// whose key was lost: for the tests of package pipaauth_test.
func DropDPoPKey(a *Auth, w http.ResponseWriter, r *http.Request) error {
	d, err := a.sessions.Load(r)
	if err != nil {
		return err
	}
	next := d.Clone()
	t := *a.keptTokens(r, d)
	t.DPoPKey = nil
	next.Tokens = &t
	return a.sessions.Save(w, r, next)
}
