package pipaauth

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/pipaauth/pipaauth/internal/httpx"
)

// expiredIDToken returns, for a logout whose request carries no live
// session, the ID token of the session it carries whose login expired
// (idle timeout or SessionLifetime), for id_token_hint: OpenID Connect
// RP-Initiated Logout 1.0, section 2, lets the hint be an expired ID
// token, and with it a strict provider ends its session and honours
// post_logout_redirect_uri. The token is sent only when it still verifies
// with PiPA's keys except for its times (signature and algorithm, iss, aud
// through the same verifier as a login's, exp, iat and nbf ignored);
// anything else is dropped and logged, and the
// logout goes with client_id alone, as without an ID token. p is the
// applied discovery document (nil: none yet). The expired session is never
// treated as logged in: no user, no revocation, no logout event; the
// caller clears its cookies and record as usual.
//
// What is left to send: after an idle timeout, the session cookie and the
// ID token cookies (or the store record) until SessionLifetime ends; after
// the SessionLifetime, for session.ExpiredGrace more. Later the browser or
// the store has forgotten them, and the logout sends client_id only.
func (a *Auth) expiredIDToken(r *http.Request, p *provider) string {
	if p == nil || p.endSession == "" { // no end-session redirect to carry a hint
		return ""
	}
	d, err := a.sessions.LoadExpired(r)
	if d == nil || err != nil {
		return ""
	}
	raw, err := a.sessions.LoadIDToken(r, d)
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: logout of an expired session: ignoring unusable ID token cookies, so no id_token_hint", slog.String("user", d.User.ID), slog.String("error", err.Error()))
	}
	if raw == "" {
		return ""
	}
	// The login's key is normally cached; a fetch for an unknown one is
	// waited for no longer than a revocation, so a logout never hangs on
	// PiPA's JWKS (an unchecked token is dropped).
	ctx, cancel := context.WithTimeout(r.Context(), min(a.cfg.ExchangeTimeout, RevocationTimeout))
	defer cancel()
	// The ID token and the session were sealed together at the login (or
	// a refresh), so its sub is the session's: only PiPA's keys, issuer
	// and client_id are left to check.
	if _, err := p.logoutTokens.Verify(ctx, raw); err != nil {
		_, brief := httpx.Brief(err) // a JWKS error holds PiPA's answer
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: logout of an expired session: its ID token does not verify with PiPA's keys, issuer and client_id, so it is not sent as id_token_hint",
			slog.String("user", d.User.ID), slog.String("error", brief.Error()))
		return ""
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: logout of an expired session: sending its ID token as id_token_hint", slog.String("user", d.User.ID))
	return raw
}
