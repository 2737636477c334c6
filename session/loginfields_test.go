package session

import (
	"strings"
	"testing"
	"time"
)

// The fields issue 8 records at login (the raw ID token, its sid, auth_time
// and the access token's issue time) round-trip in format 3.
func TestCodecLoginFields(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := sample(now)
	d.User.AuthTime = now.Add(-time.Minute)
	d.IDToken = "header.payload.signature"
	d.SID = "sid-1"
	d.AuthTimeClaimed = true
	d.Tokens = &Tokens{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", Expiry: now.Add(time.Hour), IssuedAt: now}
	b, err := serializer{}.Serialize(d)
	if err != nil {
		t.Fatal(err)
	}
	var got Data
	if err := (serializer{}).Deserialize(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.IDToken != d.IDToken || got.SID != d.SID || !got.User.AuthTime.Equal(d.User.AuthTime) || !got.Tokens.IssuedAt.Equal(now) || !got.AuthTimeClaimed {
		t.Errorf("got IDToken %q, SID %q, AuthTime %v, IssuedAt %v; want %q, %q, %v, %v",
			got.IDToken, got.SID, got.User.AuthTime, got.Tokens.IssuedAt, d.IDToken, d.SID, d.User.AuthTime, now)
	}
	huge := sample(now)
	huge.IDToken = strings.Repeat("x", maxIDToken+1)
	if _, err := (serializer{}).Serialize(huge); err == nil {
		t.Errorf("an ID token over %d bytes was serialized", maxIDToken)
	}
}

// A session of format 2 (before the access token's issue time was kept)
// still loads, with a zero IssuedAt (the refresh margin then falls back to
// 30 seconds).
func TestCodecReadsV2(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := []byte{formatV2}
	b = appendTime(b, now)
	b = appendTime(b, now)
	b = appendString(b, "user-1")
	b = appendString(b, "a@example.com")
	b = appendBool(b, true)
	b = appendTime(b, now.Add(-time.Minute))
	b = appendBool(b, true)
	b = appendString(b, "at")
	b = appendString(b, "rt")
	b = appendString(b, "Bearer")
	b = appendTime(b, now.Add(time.Hour))
	b = appendString(b, "id.token.jwt")
	b = appendString(b, "sid-1")
	var d Data
	if err := (serializer{}).Deserialize(b, &d); err != nil {
		t.Fatalf("a version 2 session does not decode: %v", err)
	}
	if d.User.ID != "user-1" || !d.User.AuthTime.Equal(now.Add(-time.Minute)) || d.Tokens == nil || d.Tokens.RefreshToken != "rt" ||
		!d.Tokens.IssuedAt.IsZero() || d.IDToken != "id.token.jwt" || d.SID != "sid-1" || d.AuthTimeClaimed {
		t.Errorf("decoded %+v (tokens %+v)", d, d.Tokens)
	}
	// A format 2 session with format 3's extra field is refused.
	if err := (serializer{}).Deserialize(appendTime(b, now), &d); err == nil {
		t.Error("a version 2 session with trailing bytes decoded")
	}
}
