// Package session keeps pipaauth's per-browser state, sealed with
// gorilla/securecookie: the session (who is logged in), in a cookie or a
// server-side store, and each login in flight in a cookie of its own.
//
// It is for wiring only: applications use package pipaauth, which builds
// the Manager from its Config. Its exported names are for pipaauth's other
// packages and for the session stores that implement its interfaces.
package session

import (
	"time"
)

// User is a logged-in PiPA user.
// For wiring only: applications use package pipaauth.
type User struct {
	ID            string // per-integration user id (the ID token's sub)
	Email         string // empty when the user chose not to share it
	EmailVerified bool
	AuthTime      time.Time // when the user last authenticated at PiPA: the ID token's auth_time, or the login time when it has none
	Claims        string    // the kept claims (pipaauth's Config.Claims) as the text of one JSON object; "" when none
}

// Attempt is one login in flight: what the callback needs to finish it. It
// lives in its own sealed cookie (see Manager.StartAttempt), never in the
// session.
// For wiring only: applications use package pipaauth.
type Attempt struct {
	State    string    // random, sent to PiPA and expected back on the callback
	Nonce    string    // random, expected in the ID token
	Verifier string    // PKCE code verifier; empty when the provider has no S256
	ReturnTo string    // same-origin path to land on after login
	Started  time.Time // the attempt expires AttemptTTL after this

	// A step-up login (RequireRecentLogin) also remembers:
	MaxAge  time.Duration // the page's maxAge: the ID token's auth_time must be within it (plus the clock skew); 0 for a plain login
	Subject string        // the user id of the session that asked for it, who must log in again; "" for anyone
}

// Tokens are the provider's tokens, kept only when the application asks.
// For wiring only: applications use package pipaauth.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time // zero when the provider gave no expires_in
	IssuedAt     time.Time // when the access token was received; with Expiry it gives the token's lifetime (zero in sessions from before it was kept)
}

// Data is everything a session holds. A *Data returned by a Manager may be
// shared with other requests: treat it as read-only and Clone it to change it.
// For wiring only: applications use package pipaauth.
type Data struct {
	User     User
	LoginAt  time.Time // zero when nobody is logged in
	LastSeen time.Time // last activity that was written back (idle timeout)
	Tokens   *Tokens   // nil unless tokens are kept
	IDToken  string    // the raw ID token of the login, for id_token_hint at logout; "" when not kept
	SID      string    // the ID token's sid claim (OpenID Connect Front/Back-Channel Logout); "" when none
	// AuthTimeClaimed reports that User.AuthTime is the ID token's signed
	// auth_time claim, not the login time it falls back to: only then can
	// it prove a recent sign-in (RequireRecentLogin).
	AuthTimeClaimed bool

	sid     string // server-side store: the id this data was loaded under; never serialized
	version uint64 // RevocableStore: the record version it was loaded at, for compare-and-set; never serialized
}

// LoggedIn reports whether d holds a logged-in user.
// For wiring only: applications use package pipaauth.
func (d *Data) LoggedIn() bool { return d != nil && !d.LoginAt.IsZero() }

// Empty reports whether d holds nothing worth a cookie.
// For wiring only: applications use package pipaauth.
func (d *Data) Empty() bool { return !d.LoggedIn() }

// Clone returns a deep copy of d that the caller may change.
// For wiring only: applications use package pipaauth.
func (d *Data) Clone() *Data {
	if d == nil {
		return &Data{}
	}
	c := *d
	if d.Tokens != nil {
		t := *d.Tokens
		c.Tokens = &t
	}
	return &c
}
