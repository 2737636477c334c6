// Package session keeps pipaauth's per-browser state: who is logged in and the
// login attempts in flight, sealed with gorilla/securecookie.
package session

import (
	"slices"
	"time"
)

// User is a logged-in PiPA user.
type User struct {
	ID            string // per-integration user id (the ID token's sub)
	Email         string // empty when the user chose not to share it
	EmailVerified bool
	AuthTime      time.Time // when the user last authenticated at PiPA: the ID token's auth_time, or the login time when it has none
}

// Attempt is one login in flight: what the callback needs to finish it.
type Attempt struct {
	State    string    // random, sent to PiPA and expected back on the callback
	Nonce    string    // random, expected in the ID token
	Verifier string    // PKCE code verifier; empty when the provider has no S256
	ReturnTo string    // same-origin path to land on after login
	Started  time.Time // the attempt expires AttemptTTL after this
}

// Tokens are the provider's tokens, kept only when the application asks.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time // zero when the provider gave no expires_in
}

// Data is everything a session holds. A *Data returned by a Manager may be
// shared with other requests: treat it as read-only and Clone it to change it.
type Data struct {
	User     User
	LoginAt  time.Time // zero when nobody is logged in
	LastSeen time.Time // last activity that was written back (idle timeout)
	Pending  []Attempt // oldest first
	Tokens   *Tokens   // nil unless tokens are kept
	IDToken  string    // the raw ID token of the login, for id_token_hint at logout; "" when not kept
	SID      string    // the ID token's sid claim (OpenID Connect Front/Back-Channel Logout); "" when none

	sid     string // server-side store: the id this data was loaded under; never serialized
	version uint64 // RevocableStore: the record version it was loaded at, for compare-and-set; never serialized
}

// LoggedIn reports whether d holds a logged-in user.
func (d *Data) LoggedIn() bool { return d != nil && !d.LoginAt.IsZero() }

// Empty reports whether d holds nothing worth a cookie.
func (d *Data) Empty() bool { return d == nil || (!d.LoggedIn() && len(d.Pending) == 0) }

// Clone returns a deep copy of d that the caller may change.
func (d *Data) Clone() *Data {
	if d == nil {
		return &Data{}
	}
	c := *d
	c.Pending = slices.Clone(d.Pending)
	if d.Tokens != nil {
		t := *d.Tokens
		c.Tokens = &t
	}
	return &c
}

// TakeAttempt removes the attempt whose state equals state from d and returns
// it. The comparison runs over every attempt in constant time per attempt.
func (d *Data) TakeAttempt(state string) (Attempt, bool) {
	idx := -1
	for i := range d.Pending {
		if equal(d.Pending[i].State, state) {
			idx = i
		}
	}
	if idx < 0 {
		return Attempt{}, false
	}
	a := d.Pending[idx]
	d.Pending = slices.Delete(d.Pending, idx, idx+1)
	return a, true
}

// AddAttempt appends a, first dropping the oldest attempts so that at most max
// remain.
func (d *Data) AddAttempt(a Attempt, max int) {
	if n := len(d.Pending) - (max - 1); n > 0 {
		d.Pending = slices.Delete(d.Pending, 0, n)
	}
	d.Pending = append(d.Pending, a)
}
