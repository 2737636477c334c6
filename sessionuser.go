package pipaauth

import (
	"log/slog"
	"net/http"
	"net/url"

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

// checkLogoutPath warns, once, when a logout without an ID token was
// served at another path than Config.LogoutPath in cookie mode: browsers
// send the ID token cookie to LogoutPath only, so a LogoutHandler mounted
// elsewhere never gets it, and logouts go without id_token_hint (strict
// providers then keep their session or ignore PostLogoutRedirectURL).
// The path is the one the browser asked for (RequestURI), not one a
// StripPrefix shortened.
func (a *Auth) checkLogoutPath(r *http.Request) {
	if a.cfg.SessionStore != nil {
		return // the store record holds the ID token
	}
	path := r.URL.Path
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && r.RequestURI != "" {
		path = u.Path
	}
	if path == a.cfg.LogoutPath {
		return
	}
	a.logoutPath.Do(func() {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: LogoutHandler is mounted at another path than Config.LogoutPath, so browsers do not send it the ID token cookie and logouts go without id_token_hint: set Config.LogoutPath to where LogoutHandler is mounted",
			slog.String("path", path), slog.String("logout_path", a.cfg.LogoutPath))
	})
}
