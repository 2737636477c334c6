package pipaauth

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// originGuard refuses state-changing requests (login start by POST, logout)
// sent from pages of other origins. It compares the browser's Origin with
// the application's public origin, RedirectURL's, never with r.Host: behind
// a reverse proxy that rewrites Host (to a backend name, an internal port),
// r.Host is not what the browser asked for, and an Origin from Safari
// before 16.4, which sends no Sec-Fetch-Site, would never match it.
//
// The rules, for methods other than GET, HEAD and OPTIONS:
//   - an Origin header must be exactly the public origin (scheme, host and
//     port): another site, another scheme (an http:// page for an https
//     application), another port, or "null" (a sandboxed frame, a
//     cross-origin redirect) is refused;
//   - without Origin, Sec-Fetch-Site must be same-origin or none (a
//     navigation the user typed), or absent (a client that is no browser:
//     browsers send Origin on every cross-origin POST).
type originGuard struct {
	public string // RedirectURL's scheme://host[:port], lower case, without a default port
	deny   http.Handler
}

// publicOrigin returns the origin (RFC 6454) of an absolute URL, as
// browsers serialize it in Origin: lower-case scheme and host, the port only
// when it is not the scheme's default.
func publicOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// allowed reports whether r may change state here.
func (g originGuard) allowed(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if origin, ok := r.Header["Origin"]; ok {
		// Exactly the serialized origin (RFC 6454 section 6.2), as browsers
		// send it: no user info, path or default port that would only
		// normalize to it.
		return len(origin) == 1 && strings.ToLower(origin[0]) == g.public
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// Handler returns h behind the check.
func (g originGuard) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.allowed(r) {
			g.deny.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// originGuard returns the guard of a handler whose refusals say reason.
func (a *Auth) originGuard(reason string) originGuard {
	public := publicOrigin(a.cfg.RedirectURL)
	return originGuard{public: public, deny: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: cross-origin request refused: its Origin is not the application's public origin (RedirectURL's); serve the application on that origin",
			slog.String("origin", r.Header.Get("Origin")), slog.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")), slog.String("public_origin", public))
		a.fail(w, r, errs.New(http.StatusForbidden, errs.ErrCrossOrigin, reason, nil))
	})}
}
