package pipaauth

import (
	"log/slog"
	"net/http"

	"github.com/pipaauth/pipaauth/session"
)

// keptTokens returns the tokens kept for d, the logged-in session of r, or
// nil. Without a SessionStore they live in cookies of their own, read only
// here: unusable ones (tampered, another session's) are logged and count
// as none, and the session stays.
func (a *Auth) keptTokens(r *http.Request, d *session.Data) *session.Tokens {
	t, err := a.sessions.LoadTokens(r, d)
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: ignoring unusable token cookies: the session has no tokens", slog.String("user", d.User.ID), slog.String("error", err.Error()))
	}
	return t
}

// keptIDToken returns the ID token of d's login for id_token_hint, or "".
// Without a SessionStore it lives in cookies sent to Config.LogoutPath
// only; unusable ones are logged and count as none.
func (a *Auth) keptIDToken(r *http.Request, d *session.Data) string {
	idt, err := a.sessions.LoadIDToken(r, d)
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: ignoring unusable ID token cookies: logout goes without id_token_hint", slog.String("user", d.User.ID), slog.String("error", err.Error()))
	}
	return idt
}
