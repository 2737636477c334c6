package pipaauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// A back-channel logout token arrives from anyone who can reach the
// endpoint. Before its signature is checked, which may make this
// application fetch PiPA's JWKS (within UnknownKeyInterval), its unverified
// claims must already name this issuer and client and carry the logout
// event: a token that could never pass is refused at once, without touching
// the key set. These checks are repeated on the verified claims.

// precheckLogoutToken reads the unverified payload of jws and refuses it
// (400) unless its iss is issuer, its aud is or holds clientID and no other
// audience, and its events claim holds the back-channel logout event
// (Back-Channel Logout 1.0 section 2.6 steps 4 and 5).
func precheckLogoutToken(jws *jose.JSONWebSignature, issuer, clientID string) *badLogoutToken {
	bad := func(reason string, err error) *badLogoutToken {
		return &badLogoutToken{reason: reason, err: fmt.Errorf("before its signature was checked: %w", err)}
	}
	var c struct {
		Iss    *string         `json:"iss"`
		Aud    json.RawMessage `json:"aud"`
		Events json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return bad("The logout token's claims are malformed.", errors.New("the payload is not a JSON object with a string iss"))
	}
	if c.Iss == nil || *c.Iss != issuer {
		return bad("The logout token's signature, issuer or audience is not valid.", errors.New("iss is not the issuer"))
	}
	var auds []string
	var one string
	switch {
	case json.Unmarshal(c.Aud, &one) == nil:
		auds = []string{one}
	case json.Unmarshal(c.Aud, &auds) == nil:
	default:
		return bad("The logout token's signature, issuer or audience is not valid.", errors.New("aud is neither a string nor an array of strings"))
	}
	if !slices.Contains(auds, clientID) {
		return bad("The logout token's signature, issuer or audience is not valid.", errors.New("aud does not name this client"))
	}
	if slices.ContainsFunc(auds, func(a string) bool { return a != clientID }) {
		return bad("The logout token names another audience than this client.", errors.New("aud names another client too"))
	}
	if !isLogoutEvent(c.Events) {
		return bad(`The logout token's events claim lacks the member "`+backChannelLogoutEvent+`" with a JSON object value.`, errors.New("no logout event"))
	}
	return nil
}
