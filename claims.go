package pipaauth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/callback"
	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/session"
)

// EventClaimNotKept reports, with the claim's name in Event.Claim, that a
// claim named in Config.Claims came only as a distributed or aggregated
// reference (OpenID Connect Core 5.6.2), which is never fetched: the login
// or refresh went on without it.
const EventClaimNotKept EventKind = "claim_not_kept" // a named claim came only as a distributed or aggregated reference

// ReasonClaimsTooLarge is the reason of a login_failed event (and of a
// refresh_failed one that ended the session) whose kept claims do not fit
// the session (ErrClaimsTooLarge).
const ReasonClaimsTooLarge = "claims_too_large" // login_failed: the kept claims do not fit (cookie: 4 KB; store record: 64 KiB)

// ErrClaimsTooLarge is wrapped by the refusal of a login whose kept claims
// (Config.Claims) do not fit the session: a session cookie over 4096 bytes
// in cookie mode, or more than MaxClaimsBytes of claims with a
// SessionStore. The error page names the largest claim, its size and the
// fix. A refresh whose claims no longer fit ends the session with it.
var ErrClaimsTooLarge = errs.ErrClaimsTooLarge

// MaxClaimsBytes bounds the kept claims of one session, as the text of
// their JSON object: 64 KiB. In cookie mode the 4096-byte session cookie
// bounds them sooner (a name and ten group names take about 300 bytes of
// it).
const MaxClaimsBytes = errs.MaxClaimsBytes

// userClaims are the claims a session never keeps in User.Claim: User's
// fields hold them.
var userClaims = []string{"sub", "email", "email_verified", "auth_time"}

// checkClaims checks Config.Claims and returns it without duplicates.
func (c *Config) checkClaims() ([]string, error) {
	if len(c.Claims) == 0 {
		return nil, nil
	}
	if !slices.Contains(c.Scopes, "openid") {
		return nil, fmt.Errorf("%w: Claims needs the openid scope in Scopes: claims come from the ID token and UserInfo", errs.ErrConfig)
	}
	var out []string
	for _, name := range c.Claims {
		switch {
		case name == "" || !utf8.ValidString(name) || slices.ContainsFunc([]rune(name), unicode.IsControl):
			return nil, fmt.Errorf("%w: Claims holds the claim name %q: names are non-empty text such as \"groups\"", errs.ErrConfig, name)
		case slices.Contains(userClaims, name):
			return nil, fmt.Errorf("%w: Claims names %q, which User keeps already (ID, Email, EmailVerified, AuthTime): remove it", errs.ErrConfig, name)
		case name == "_claim_names" || name == "_claim_sources":
			return nil, fmt.Errorf("%w: Claims names %q, which only points to distributed or aggregated claims (OpenID Connect Core 5.6.2): name the claim itself", errs.ErrConfig, name)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// userOf converts the session's user: a struct copy, with the kept claims
// still as JSON text (Claim decodes them when asked).
func userOf(u session.User) User {
	return User{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, AuthTime: u.AuthTime, claims: u.Claims}
}

// sessionUser is the inverse of userOf.
func sessionUser(u User) session.User {
	return session.User{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, AuthTime: u.AuthTime, Claims: u.claims}
}

// Claim decodes the kept claim name into v, as encoding/json does, and
// reports whether the user has it. A name not listed in Config.Claims is
// never present, and neither are sub, email, email_verified and auth_time
// (User's fields hold them).
//
// Kept claims come from the ID token of the login or, for those it lacks,
// from PiPA's UserInfo endpoint (OpenID Connect Core 5.4); a refresh that
// returns an ID token replaces them with the new token's (and UserInfo's),
// clearing those no longer sent. A claim sent as JSON null counts as
// absent, and so does one that came only as a distributed or aggregated
// reference (OpenID Connect Core 5.6.2, EventClaimNotKept). Sessions written
// before a name was added to Config.Claims (or before this package kept
// claims at all) have no claims until the user's next login or refresh; a
// name removed from Config.Claims is gone at the next login or refresh.
//
// A user absent from the session, or made by ContextWithUser from a User
// literal, has no claims. The error, when the claim is present but does not
// decode into v, is encoding/json's.
func (u User) Claim(name string, v any) (bool, error) {
	raw, ok := u.rawClaim(name)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return true, fmt.Errorf("pipaauth: claim %q: %w", name, err)
	}
	return true, nil
}

// rawClaim returns the JSON value of the kept claim name.
func (u User) rawClaim(name string) (string, bool) {
	if u.claims == "" || slices.Contains(userClaims, name) {
		return "", false
	}
	raw, ok := findClaim(u.claims, name)
	return raw, ok && raw != "null"
}

// AllowClaim returns a rule that lets a user in whose claim name is a
// string equal to one of values, or an array holding one of them, compared
// exactly. With no values it admits nobody, as AllowEmails does.
//
// The claim must be named in Config.Claims. A claim of another shape (a
// number, a boolean, an object) never matches, nor does an array's element
// that is not a string. Combine it with the other rules in one function,
// for example
//
//	admins := pipaauth.AllowClaim("groups", "admins")
//	staff := pipaauth.AllowEmailDomains("example.com")
//	auth.RequireUser(func(u pipaauth.User) bool { return admins(u) && staff(u) })
//
// and put RequireRecentLogin around it for pages that need a recent login.
// Common claims: "groups" (Keycloak with a group membership mapper, Okta
// with a groups claim on the authorization server; ask for the scope that
// carries it, often "groups"), "roles" (Entra ID app roles, in the ID token
// without a scope of their own), "cognito:groups" (Amazon Cognito).
func AllowClaim(name string, values ...string) func(User) bool {
	set := make(map[string]bool, len(values))
	for _, v := range values {
		set[v] = true
	}
	return func(u User) bool {
		if len(set) == 0 {
			return false
		}
		raw, ok := u.rawClaim(name)
		if !ok {
			return false
		}
		return anyString(raw, func(s string) bool { return set[s] })
	}
}

// refreshClaims updates next's kept claims after a refresh that returned
// tok (see callback.Flow.RefreshClaims), reporting the claims not kept. Its
// error ends the session.
func (a *Auth) refreshClaims(r *http.Request, p *provider, next *session.Data, tok *oauth2.Token) error {
	claims, notKept, err := p.flow.RefreshClaims(r.Context(), tok, next.User.ID, next.User.Claims)
	if err != nil {
		return err
	}
	grew := len(claims) > len(next.User.Claims)
	next.User.Claims = claims
	if grew && !a.sessions.ServerSide() {
		// Claims that no longer fit the cookie end the session with the
		// reason (a login then shows the error page), rather than as a
		// cookie too large for some unknown cause.
		if n, err := a.sessions.CookieBytes(next); err == nil && n > session.MaxCookieBytes {
			bare := next.Clone()
			bare.User.Claims = ""
			if m, err := a.sessions.CookieBytes(bare); err == nil && m <= session.MaxCookieBytes {
				return errs.New(http.StatusUnauthorized, callback.ErrRefreshRefused, "Your PiPA session has ended. Please log in again.",
					errs.ClaimsTooLarge(claims, n, session.MaxCookieBytes, true))
			}
		}
	}
	for _, name := range notKept {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: a claim named in Config.Claims came only as a distributed or aggregated reference (OpenID Connect Core 5.6.2): it is not fetched and not kept",
			slog.String("claim", name), slog.String("user", next.User.ID))
		if a.cfg.OnEvent != nil {
			a.event(r.Context(), Event{Kind: EventClaimNotKept, UserID: next.User.ID, Claim: name})
		}
	}
	return nil
}
