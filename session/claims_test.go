package session

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// Claims ride in format 5 and are read back whole; claims over maxClaims
// are refused when written and when read.
func TestCodecClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := sample(now)
	d.User.Claims = `{"name":"Alice","groups":["admins","staff"]}`
	b, err := serializer{}.Serialize(d)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != formatV5 {
		t.Errorf("a session with claims is written as version %d, want %d", b[0], formatV5)
	}
	var got Data
	if err := (serializer{}).Deserialize(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.User != d.User {
		t.Errorf("round trip: %+v, want %+v", got.User, d.User)
	}

	max := sample(now)
	max.User.Claims = `{"g":"` + strings.Repeat("x", maxClaims-8) + `"}`
	if _, err := (serializer{}).Serialize(max); err != nil {
		t.Errorf("claims of %d bytes refused: %v", len(max.User.Claims), err)
	}
	max.User.Claims += " "
	if _, err := (serializer{}).Serialize(max); err == nil {
		t.Errorf("claims of %d bytes accepted, more than %d", len(max.User.Claims), maxClaims)
	}
}

func TestCodecClaimsRejectsMalformed(t *testing.T) {
	d := sample(time.Unix(1_800_000_000, 0))
	d.User.Claims = `{"name":"Alice"}`
	good, _ := serializer{}.Serialize(d)
	for name, b := range map[string][]byte{
		"truncated":     good[:len(good)-1],
		"one byte more": append(bytes.Clone(good), 0),
	} {
		t.Run(name, func(t *testing.T) {
			var d Data
			if err := (serializer{}).Deserialize(b, &d); err == nil {
				t.Errorf("Deserialize accepted malformed data: %+v", d.User)
			}
		})
	}
}

// CookieBytes measures what Save writes.
func TestCookieBytes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := newManager(t, &clock{now}, nil)
	d := sample(now)
	d.User.Claims = `{"name":"Alice"}`
	n, err := m.CookieBytes(d)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := m.Save(w, nil, d); err != nil {
		t.Fatal(err)
	}
	if got := len(w.Header().Get("Set-Cookie")); got != n {
		t.Errorf("CookieBytes = %d, Save wrote %d", n, got)
	}
	d.User.Claims = `{"g":"` + strings.Repeat("x", 4000) + `"}`
	if err := m.Save(httptest.NewRecorder(), nil, d); !errors.Is(err, errs.ErrCookieTooLarge) {
		t.Errorf("Save with 4 KB of claims: %v, want ErrCookieTooLarge", err)
	}
}
