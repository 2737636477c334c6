package session

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The fields issue 8 records at login ride in an optional trailing section
// of the v1 format: they round-trip, a session without them encodes as
// before, and a broken section is refused.
func TestCodecLoginFields(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := sample(now)
	d.User.AuthTime = now.Add(-time.Minute)
	d.IDToken = "header.payload.signature"
	d.SID = "sid-1"
	d.Tokens = &Tokens{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", Expiry: now.Add(time.Hour), IssuedAt: now}
	b, err := serializer{}.Serialize(d)
	if err != nil {
		t.Fatal(err)
	}
	var got Data
	if err := (serializer{}).Deserialize(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.IDToken != d.IDToken || got.SID != d.SID || !got.User.AuthTime.Equal(d.User.AuthTime) || !got.Tokens.IssuedAt.Equal(now) {
		t.Errorf("got IDToken %q, SID %q, AuthTime %v, IssuedAt %v; want %q, %q, %v, %v",
			got.IDToken, got.SID, got.User.AuthTime, got.Tokens.IssuedAt, d.IDToken, d.SID, d.User.AuthTime, now)
	}

	// Without the fields: the bytes of the format before them.
	plain := sample(now)
	old, _ := serializer{}.Serialize(plain)
	with, _ := serializer{}.Serialize(&Data{User: plain.User, LoginAt: plain.LoginAt, LastSeen: plain.LastSeen, Pending: plain.Pending, SID: "x"})
	if !bytes.HasPrefix(with, old) || len(with) <= len(old) {
		t.Errorf("the section is not appended to the old encoding")
	}
	for name, bad := range map[string][]byte{
		"unknown section": append(bytes.Clone(old), 2),
		"truncated":       b[:len(b)-1],
		"trailing":        append(bytes.Clone(b), 0),
	} {
		var x Data
		if err := (serializer{}).Deserialize(bad, &x); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	huge := sample(now)
	huge.IDToken = strings.Repeat("x", maxToken+1)
	if _, err := (serializer{}).Serialize(huge); err == nil {
		t.Errorf("an ID token over %d bytes was serialized", maxToken)
	}
}
