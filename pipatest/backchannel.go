package pipatest

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// BackChannelLogoutEvent is the member of a logout token's events claim that
// makes it a logout token (OpenID Connect Back-Channel Logout 1.0 section 2.4).
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenLifetime is the time from iat to exp of the logout tokens that
// [Server.LogoutToken] makes, unless LogoutTokenOptions.Expiry says otherwise:
// the two minutes Back-Channel Logout 1.0 section 4 recommends.
const LogoutTokenLifetime = 2 * time.Minute

// LogoutTokenOptions shape a logout token made by [Server.LogoutToken]. The
// zero value makes a valid token for the current user (see
// [Server.SetUser]), identified by sub only. Each field that makes the token
// invalid names the check of Back-Channel Logout 1.0 section 2.6 it breaks.
type LogoutTokenOptions struct {
	// User names the test user whose sessions the token ends: sub is
	// [Server.Subject](clientID, User). Default: the current user.
	User string
	// Subject, when not empty, is the sub claim as is, instead of the
	// subject derived from User.
	Subject string
	// OmitSubject leaves sub out: the token then needs SID to be valid.
	OmitSubject bool
	// SID is the sid claim, the provider's session id; "" leaves it out.
	SID string

	// JTI is the jti claim. Default: a fresh random value. Sending the same
	// JTI twice is a replay, which a relying party refuses.
	JTI string
	// OmitJTI leaves jti out (invalid).
	OmitJTI bool
	// IssuedAt is the iat claim. Default: the server's clock now. An old or
	// future iat is invalid.
	IssuedAt time.Time
	// OmitIssuedAt leaves iat out (invalid).
	OmitIssuedAt bool
	// Expiry is the exp claim. Default: IssuedAt plus LogoutTokenLifetime.
	// A past exp is invalid.
	Expiry time.Time
	// OmitExpiry leaves exp out, as providers following the Back-Channel
	// Logout text of 2022 (before errata set 1 made exp REQUIRED) do.
	OmitExpiry bool

	// Events, when not nil, is the events claim as is (any JSON value)
	// instead of {BackChannelLogoutEvent: {}}; for example
	// map[string]any{BackChannelLogoutEvent: "yes"} is invalid.
	Events any
	// OmitEvents leaves events out (invalid).
	OmitEvents bool
	// Nonce, when not empty, adds a nonce claim, which logout tokens must
	// not carry (invalid).
	Nonce string
	// Audience, when not nil, is the aud claim (an array) instead of
	// clientID. Any audience other than the client is invalid.
	Audience []string
	// Issuer, when not empty, is the iss claim instead of the server's
	// issuer URL (invalid, unless it is the same).
	Issuer string

	// Type is the JWS typ header. Default "logout+jwt"; "JWT" is what
	// providers that do not type logout tokens send. Another type, such as
	// "at+jwt", is invalid.
	Type string
	// OmitType leaves the typ header out (valid: typing is RECOMMENDED).
	OmitType bool
	// WrongKey signs the token with a key that is not in the JWKS, under
	// the kid of the real key (invalid).
	WrongKey bool

	// ClaimsHook, when set, makes the last edit of the claims before
	// signing, for any other kind of token.
	ClaimsHook func(claims map[string]any)
}

// LogoutToken returns a logout token (OpenID Connect Back-Channel Logout 1.0
// section 2.4) signed with the server's current key, as the provider would
// POST it in the logout_token form field to the client's
// backchannel_logout_uri: valid by default, or broken as opts say, to test a
// relying party's back-channel logout handler.
//
// The server must be started, or opts.Issuer set. LogoutToken panics when
// the server is not started and opts.Issuer is empty.
func (s *Server) LogoutToken(clientID string, opts LogoutTokenOptions) string {
	s.mu.Lock()
	iss := s.issuer
	now := s.now()
	key := s.key
	user := s.current.Name
	s.mu.Unlock()
	if opts.Issuer != "" {
		iss = opts.Issuer
	}
	if iss == "" {
		panic("pipatest: LogoutToken on a server that is not started: start it or set LogoutTokenOptions.Issuer")
	}
	if opts.User != "" {
		user = opts.User
	}

	iat := now
	if !opts.IssuedAt.IsZero() {
		iat = opts.IssuedAt
	}
	exp := iat.Add(LogoutTokenLifetime)
	if !opts.Expiry.IsZero() {
		exp = opts.Expiry
	}
	claims := map[string]any{
		"iss":    iss,
		"aud":    clientID,
		"iat":    iat.Unix(),
		"exp":    exp.Unix(),
		"jti":    randomToken(),
		"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
		"sub":    s.Subject(clientID, user),
	}
	switch {
	case opts.OmitSubject:
		delete(claims, "sub")
	case opts.Subject != "":
		claims["sub"] = opts.Subject
	}
	if opts.SID != "" {
		claims["sid"] = opts.SID
	}
	switch {
	case opts.OmitJTI:
		delete(claims, "jti")
	case opts.JTI != "":
		claims["jti"] = opts.JTI
	}
	if opts.OmitIssuedAt {
		delete(claims, "iat")
	}
	if opts.OmitExpiry {
		delete(claims, "exp")
	}
	switch {
	case opts.OmitEvents:
		delete(claims, "events")
	case opts.Events != nil:
		claims["events"] = opts.Events
	}
	if opts.Nonce != "" {
		claims["nonce"] = opts.Nonce
	}
	if opts.Audience != nil {
		claims["aud"] = opts.Audience
	}
	if opts.ClaimsHook != nil {
		opts.ClaimsHook(claims)
	}

	typ := jose.ContentType("logout+jwt")
	switch {
	case opts.OmitType:
		typ = ""
	case opts.Type != "":
		typ = jose.ContentType(opts.Type)
	}
	priv := key.priv
	if opts.WrongKey {
		priv = s.wrongKey()
	}
	tok, err := signTyped(priv, key.kid, typ, claims)
	if err != nil {
		panic(fmt.Sprintf("pipatest: signing a logout token: %v", err))
	}
	return tok
}

// signTyped returns the claims as a compact JWS signed with RS256, with the
// typ header typ, or none when typ is empty.
func signTyped(priv *rsa.PrivateKey, kid string, typ jose.ContentType, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %v", err)
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(typ)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}},
		opts,
	)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
