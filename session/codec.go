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
// Version 2 (written): LoginAt, LastSeen, User (ID, Email, EmailVerified,
// AuthTime), Tokens, IDToken, SID. Version 1 (read only, written before login
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
	formatV5 = 5 // version 4 and the kept claims (User.Claims)

	maxField   = 2048     // longest user, attempt or sid field, in bytes
	maxToken   = 64 << 10 // longest token field (JWT access tokens can be large; server-side stores hold them)
	maxIDToken = 16 << 10 // longest raw ID token (a few KiB with many claims)
	maxPending = 16       // most attempts a version 1 session may carry
	maxClaims  = 64 << 10 // longest kept-claims object (User.Claims), in bytes
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
		n += len(d.Tokens.AccessToken) + len(d.Tokens.RefreshToken)
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
	if d.User.Claims == "" {
		// Without claims the session is written as before they existed
		// (version 4), byte for byte: Config.Claims left empty costs
		// nothing, and a rollback still reads these sessions.
		return d.appendV4(append(b, formatV4))
	}
	b = d.appendV4(append(b, formatV5))
	return appendString(b, d.User.Claims)
}

// appendV4 appends the fields of version 4, after its version byte.
func (d *Data) appendV4(b []byte) []byte {
	b = appendTime(b, d.LoginAt)
	b = appendTime(b, d.LastSeen)
	b = appendString(b, d.User.ID)
	b = appendString(b, d.User.Email)
	b = appendBool(b, d.User.EmailVerified)
	b = appendTime(b, d.User.AuthTime)
	b = appendBool(b, d.Tokens != nil)
	if t := d.Tokens; t != nil {
		b = appendString(b, t.AccessToken)
		b = appendString(b, t.RefreshToken)
		b = appendString(b, t.TokenType)
		b = appendTime(b, t.Expiry)
		b = appendTime(b, t.IssuedAt)
	}
	b = appendString(b, d.IDToken)
	b = appendString(b, d.SID)
	b = appendBool(b, d.AuthTimeClaimed)
	return b
}

func (d *Data) unmarshalBinary(src []byte) error {
	r := reader{b: src}
	version := r.byte()
	if version < formatV1 || version > formatV5 {
		return errFormat
	}
	*d = Data{}
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

func (r *reader) time() time.Time {
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
