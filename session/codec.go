package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The session is serialized in a small versioned binary form rather than gob
// (which costs about 200 allocations a decode) or JSON. The bytes are then
// encrypted and signed by securecookie, so the decoder only ever sees what
// this package wrote, but it still checks every length: keys rotate, formats
// change, and a decoder should never trust its input.
//
// Version 5 (written): LoginAt, LastSeen, User (ID, Email, EmailVerified,
// AuthTime), AuthTimeClaimed, SID, User.Claims, the binding handle (0 or 16
// bytes), then Tokens (with DPoPKey; their times in milliseconds) and
// IDToken. In cookie mode the
// session cookie holds it with no Tokens and an empty IDToken (two bytes),
// and the tokens and ID token go to side cookies (side.go); a store record
// holds all of it with an empty handle.
//
// Versions 2 to 4 (read only: sessions sealed before the side cookies):
// LoginAt, LastSeen, User (ID, Email, EmailVerified, AuthTime), Tokens,
// IDToken, SID, then (3) the access token's issue time and (4)
// AuthTimeClaimed. Version 1 (read only, written before login
// attempts moved to cookies of their own) carried the pending attempts in
// the session; they are read past and dropped, so an upgrade logs nobody out
// (logins in flight across the upgrade are started again). Version 5 is
// version 4 and User.Claims, written only when the user has kept claims:
// without them a session is written as version 4.

const (
	formatV1 = 1
	formatV2 = 2
	formatV3 = 3 // version 2 and the access token's issue time
	formatV4 = 4 // version 3 and whether AuthTime is the auth_time claim
	formatV5 = 5 // identity first, claims, the binding handle, DPoP key; tokens and ID token optional (side cookies)

	maxField   = 2048     // longest user, attempt or sid field, in bytes
	maxToken   = 64 << 10 // longest token field (JWT access tokens can be large; server-side stores hold them)
	maxIDToken = 16 << 10 // longest raw ID token (a few KiB with many claims)
	maxPending = 16       // most attempts a version 1 session may carry
	maxClaims  = 64 << 10 // longest kept claims (JSON text)
	maxDPoPKey = 4 << 10  // longest DPoP private key (PKCS#8 DER; P-256 is about 138 bytes)
)

var errFormat = errors.New("session: malformed session data")

// serializer implements securecookie.Serializer for *Data.
type serializer struct{}

func (serializer) Serialize(src any) ([]byte, error) {
	d, ok := src.(*Data)
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T", src)
	}
	return d.marshalBinary()
}

// marshalBinary encodes d after checking it against the limits the decoder
// enforces, so that nothing is saved that could not be read back.
func (d *Data) marshalBinary() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	n := 128 + len(d.IDToken) + len(d.SID) + len(d.User.Claims)
	if d.Tokens != nil {
		n += len(d.Tokens.AccessToken) + len(d.Tokens.RefreshToken) + len(d.Tokens.DPoPKey)
	}
	return d.appendBinary(make([]byte, 0, n)), nil
}

// check applies the decoder's limits.
func (d *Data) check() error {
	for _, f := range []string{d.User.ID, d.User.Email, d.SID} {
		if len(f) > maxField {
			return fmt.Errorf("session: a field of %d bytes, more than %d", len(f), maxField)
		}
	}
	if len(d.User.Claims) > maxClaims {
		return fmt.Errorf("session: kept claims of %d bytes, more than %d", len(d.User.Claims), maxClaims)
	}
	if len(d.IDToken) > maxIDToken {
		return fmt.Errorf("session: an ID token of %d bytes, more than %d", len(d.IDToken), maxIDToken)
	}
	if t := d.Tokens; t != nil {
		for _, f := range []string{t.AccessToken, t.RefreshToken} {
			if len(f) > maxToken {
				return fmt.Errorf("session: a token of %d bytes, more than %d", len(f), maxToken)
			}
		}
		if len(t.TokenType) > maxField {
			return fmt.Errorf("session: a token type of %d bytes, more than %d", len(t.TokenType), maxField)
		}
		if len(t.DPoPKey) > maxDPoPKey {
			return fmt.Errorf("session: a DPoP key of %d bytes, more than %d", len(t.DPoPKey), maxDPoPKey)
		}
	}
	return nil
}

func (serializer) Deserialize(src []byte, dst any) error {
	d, ok := dst.(*Data)
	if !ok {
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	return d.unmarshalBinary(src)
}

func (d *Data) appendBinary(b []byte) []byte {
	b = append(b, formatV5)
	b = appendTime(b, d.LoginAt)
	b = appendTime(b, d.LastSeen)
	b = appendString(b, d.User.ID)
	b = appendString(b, d.User.Email)
	b = appendBool(b, d.User.EmailVerified)
	b = appendTime(b, d.User.AuthTime)
	b = appendBool(b, d.AuthTimeClaimed)
	b = appendString(b, d.SID)
	b = appendString(b, d.User.Claims)
	if d.bind == (handle{}) {
		b = append(b, 0)
	} else {
		b = append(b, byte(len(d.bind)))
		b = append(b, d.bind[:]...)
	}
	b = appendBool(b, d.Tokens != nil)
	if t := d.Tokens; t != nil {
		b = appendTokens(b, t)
	}
	return appendString(b, d.IDToken)
}

// appendTokens writes t as format 5 holds it, in the session record and
// in the token cookies alike.
func appendTokens(b []byte, t *Tokens) []byte {
	b = appendString(b, t.AccessToken)
	b = appendString(b, t.RefreshToken)
	b = appendString(b, t.TokenType)
	b = appendMillis(b, t.Expiry)
	b = appendMillis(b, t.IssuedAt)
	return appendString(b, string(t.DPoPKey))
}

// readTokens reads what appendTokens wrote.
func (r *reader) tokens() *Tokens {
	t := &Tokens{
		AccessToken:  r.stringMax(maxToken),
		RefreshToken: r.stringMax(maxToken),
		TokenType:    r.string(),
		Expiry:       r.millis(),
		IssuedAt:     r.millis(),
	}
	if k := r.stringMax(maxDPoPKey); k != "" {
		t.DPoPKey = []byte(k)
	}
	return t
}

func (d *Data) unmarshalBinary(src []byte) error {
	r := reader{b: src}
	version := r.byte()
	if version < formatV1 || version > formatV5 {
		return errFormat
	}
	*d = Data{}
	if version == formatV5 {
		return d.unmarshalV5(&r)
	}
	d.LoginAt = r.time()
	d.LastSeen = r.time()
	d.User.ID = r.string()
	d.User.Email = r.string()
	d.User.EmailVerified = r.bool()
	if version == formatV1 {
		// Pending attempts: read past them (checking their lengths) and
		// drop them.
		n := r.uvarint()
		if n > maxPending {
			r.err = true
		}
		for i := uint64(0); i < n && !r.err; i++ {
			r.string() // state
			r.string() // nonce
			r.string() // verifier
			r.string() // return path
			r.time()   // started
		}
	} else {
		d.User.AuthTime = r.time()
	}
	if r.bool() {
		d.Tokens = &Tokens{
			AccessToken:  r.stringMax(maxToken),
			RefreshToken: r.stringMax(maxToken),
			TokenType:    r.string(),
			Expiry:       r.time(),
		}
		if version >= formatV3 {
			d.Tokens.IssuedAt = r.time()
		}
	}
	if version >= formatV2 {
		d.IDToken = r.stringMax(maxIDToken)
		d.SID = r.string()
	}
	if version >= formatV4 {
		d.AuthTimeClaimed = r.bool()
	}
	if version >= formatV5 {
		d.User.Claims = r.stringMax(maxClaims)
		if d.User.Claims == "" {
			r.err = true // version 5 is written only with claims
		}
	}
	if r.err || len(r.b) != 0 {
		*d = Data{}
		return errFormat
	}
	return nil
}

func (d *Data) unmarshalV5(r *reader) error {
	d.LoginAt = r.time()
	d.LastSeen = r.time()
	d.User.ID = r.string()
	d.User.Email = r.string()
	d.User.EmailVerified = r.bool()
	d.User.AuthTime = r.time()
	d.AuthTimeClaimed = r.bool()
	d.SID = r.string()
	d.User.Claims = r.stringMax(maxClaims)
	switch n := r.byte(); {
	case n == byte(len(d.bind)) && len(r.b) >= len(d.bind):
		r.b = r.b[copy(d.bind[:], r.b):]
	case n != 0:
		r.err = true
	}
	if r.bool() {
		d.Tokens = r.tokens()
	}
	d.IDToken = r.stringMax(maxIDToken)
	if r.err || len(r.b) != 0 {
		*d = Data{}
		return errFormat
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendTime stores t in whole seconds since the Unix epoch, 0 for the zero
// time.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.Unix())
}

// appendMillis stores t in whole milliseconds since the Unix epoch, 0 for
// the zero time: the tokens' times, whose refresh margin may be seconds.
func appendMillis(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixMilli())
}

// reader consumes src; after the first error every read returns zero values
// and err stays set.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) byte() byte {
	if r.err || len(r.b) == 0 {
		r.err = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bool() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.err = true
	return false
}

func (r *reader) uvarint() uint64 {
	if r.err {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) time() time.Time { return r.stamp(time.Second) }

// millis reads a time stored in milliseconds (appendMillis).
func (r *reader) millis() time.Time { return r.stamp(time.Millisecond) }

// stamp reads a varint count of unit since the Unix epoch, 0 for the zero
// time.
func (r *reader) stamp(unit time.Duration) time.Time {
	if r.err {
		return time.Time{}
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		return time.Time{}
	}
	r.b = r.b[n:]
	if v == 0 {
		return time.Time{}
	}
	if unit == time.Millisecond {
		return time.UnixMilli(v)
	}
	return time.Unix(v, 0)
}

func (r *reader) string() string { return r.stringMax(maxField) }

func (r *reader) stringMax(max uint64) string {
	n := r.uvarint()
	if r.err || n > max || n > uint64(len(r.b)) {
		r.err = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
