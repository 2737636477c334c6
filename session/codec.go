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

const (
	formatV1 = 1
	extLogin = 1 // flag byte of the optional trailing section (ID token, sid, auth_time, token issue time)

	maxField   = 2048     // longest user or attempt field, in bytes
	maxToken   = 64 << 10 // longest token field (JWT access tokens can be large; server-side stores hold them)
	maxPending = 16       // most attempts
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
	return d.appendBinary(make([]byte, 0, 128+len(d.Pending)*160)), nil
}

// check applies the decoder's limits.
func (d *Data) check() error {
	if len(d.Pending) > maxPending {
		return fmt.Errorf("session: %d pending logins, more than %d", len(d.Pending), maxPending)
	}
	if len(d.IDToken) > maxToken {
		return fmt.Errorf("session: an ID token of %d bytes, more than %d", len(d.IDToken), maxToken)
	}
	fields := []string{d.User.ID, d.User.Email, d.SID}
	for _, a := range d.Pending {
		fields = append(fields, a.State, a.Nonce, a.Verifier, a.ReturnTo)
	}
	for _, f := range fields {
		if len(f) > maxField {
			return fmt.Errorf("session: a field of %d bytes, more than %d", len(f), maxField)
		}
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
	b = append(b, formatV1)
	b = appendTime(b, d.LoginAt)
	b = appendTime(b, d.LastSeen)
	b = appendString(b, d.User.ID)
	b = appendString(b, d.User.Email)
	b = appendBool(b, d.User.EmailVerified)
	b = binary.AppendUvarint(b, uint64(len(d.Pending)))
	for _, a := range d.Pending {
		b = appendString(b, a.State)
		b = appendString(b, a.Nonce)
		b = appendString(b, a.Verifier)
		b = appendString(b, a.ReturnTo)
		b = appendTime(b, a.Started)
	}
	b = appendBool(b, d.Tokens != nil)
	if t := d.Tokens; t != nil {
		b = appendString(b, t.AccessToken)
		b = appendString(b, t.RefreshToken)
		b = appendString(b, t.TokenType)
		b = appendTime(b, t.Expiry)
	}
	// Issue 8 appended an optional section at the end of v1, behind a flag
	// byte, so that cookies written before it still load: the raw ID token,
	// its sid, the user's auth_time and the access token's issue time.
	if d.IDToken != "" || d.SID != "" || !d.User.AuthTime.IsZero() || (d.Tokens != nil && !d.Tokens.IssuedAt.IsZero()) {
		b = append(b, extLogin)
		b = appendString(b, d.IDToken)
		b = appendString(b, d.SID)
		b = appendTime(b, d.User.AuthTime)
		var issued time.Time
		if d.Tokens != nil {
			issued = d.Tokens.IssuedAt
		}
		b = appendTime(b, issued)
	}
	return b
}

func (d *Data) unmarshalBinary(src []byte) error {
	r := reader{b: src}
	if r.byte() != formatV1 {
		return errFormat
	}
	*d = Data{}
	d.LoginAt = r.time()
	d.LastSeen = r.time()
	d.User.ID = r.string()
	d.User.Email = r.string()
	d.User.EmailVerified = r.bool()
	n := r.uvarint()
	if n > maxPending {
		*d = Data{}
		return errFormat
	}
	if n > 0 {
		d.Pending = make([]Attempt, n)
		for i := range d.Pending {
			a := &d.Pending[i]
			a.State = r.string()
			a.Nonce = r.string()
			a.Verifier = r.string()
			a.ReturnTo = r.string()
			a.Started = r.time()
		}
	}
	if r.bool() {
		d.Tokens = &Tokens{
			AccessToken:  r.stringMax(maxToken),
			RefreshToken: r.stringMax(maxToken),
			TokenType:    r.string(),
			Expiry:       r.time(),
		}
	}
	if len(r.b) > 0 && !r.err {
		if r.byte() != extLogin {
			*d = Data{}
			return errFormat
		}
		d.IDToken = r.stringMax(maxToken)
		d.SID = r.string()
		d.User.AuthTime = r.time()
		if issued := r.time(); d.Tokens != nil {
			d.Tokens.IssuedAt = issued
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
