package session

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
	"time"
)

// Written by the base commit of the DPoP work (206ca26), with the sample
// below: a version 4 session with Bearer tokens and a version 2 step-up
// attempt.
const (
	oldSessionV4 = "04c8c9ceb40d90cbceb40d057375622d310d61406578616d706c652e636f6d0180c8ceb40d010461742d310472742d3106426561726572a080cfb40dc8c9ceb40d0c69642e746f6b656e2e726177057369642d3101"
	oldAttemptV2 = "02027374026e6f027665022f7280c8ceb40d3c057375622d31"
)

func fixtureData() *Data {
	return &Data{User: User{ID: "sub-1", Email: "a@example.com", EmailVerified: true, AuthTime: time.Unix(1_800_000_000, 0)},
		LoginAt: time.Unix(1_800_000_100, 0), LastSeen: time.Unix(1_800_000_200, 0),
		Tokens:  &Tokens{AccessToken: "at-1", RefreshToken: "rt-1", TokenType: "Bearer", Expiry: time.Unix(1_800_003_600, 0), IssuedAt: time.Unix(1_800_000_100, 0)},
		IDToken: "id.token.raw", SID: "sid-1", AuthTimeClaimed: true}
}

func TestCodecReadsSessionsOfThePreviousVersion(t *testing.T) {
	b, _ := hex.DecodeString(oldSessionV4)
	var d Data
	if err := (serializer{}).Deserialize(b, &d); err != nil {
		t.Fatalf("a session written by the previous version: %v", err)
	}
	if want := fixtureData(); !reflect.DeepEqual(&d, want) {
		t.Errorf("read %+v, want %+v", d, want)
	}
	a, _ := hex.DecodeString(oldAttemptV2)
	var at Attempt
	if err := (attemptSerializer{}).Deserialize(a, &at); err != nil || at.Subject != "sub-1" || at.MaxAge != time.Minute || at.DPoPKey != nil {
		t.Errorf("an attempt written by the previous version: %+v, %v", at, err)
	}
}

func TestCodecDPoPKey(t *testing.T) {
	d := fixtureData()
	d.Tokens.TokenType, d.Tokens.DPoPKey = "DPoP", bytes.Repeat([]byte{7}, 138)
	b, err := serializer{}.Serialize(d)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != formatV5 {
		t.Errorf("a session with a DPoP key written as version %d, want %d", b[0], formatV5)
	}
	var got Data
	if err := (serializer{}).Deserialize(b, &got); err != nil || !reflect.DeepEqual(&got, d) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// Clone copies the key.
	c := d.Clone()
	c.Tokens.DPoPKey[0] = 8
	if d.Tokens.DPoPKey[0] != 7 {
		t.Error("Clone shares the DPoP key's bytes")
	}

	big := fixtureData()
	big.Tokens.DPoPKey = make([]byte, maxDPoPKey+1)
	if _, err := (serializer{}).Serialize(big); err == nil {
		t.Error("a DPoP key over the limit was serialized")
	}

	for name, b := range map[string][]byte{"truncated": b[:len(b)-1], "one byte more": append(bytes.Clone(b), 0)} {
		var d Data
		if err := (serializer{}).Deserialize(b, &d); err == nil {
			t.Errorf("%s: a malformed version 5 session was read: %+v", name, d)
		}
	}
}

func TestAttemptCodecDPoPKey(t *testing.T) {
	a := Attempt{State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/x", Started: time.Unix(1_800_000_000, 0), DPoPKey: bytes.Repeat([]byte{7}, 138)}
	b, err := attemptSerializer{}.Serialize(&a)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != attemptV3 {
		t.Errorf("an attempt with a DPoP key written as version %d, want %d", b[0], attemptV3)
	}
	var got Attempt
	if err := (attemptSerializer{}).Deserialize(b, &got); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	empty := append(bytes.Clone(b[:len(b)-2-138]), 0) // the key (138 bytes, a 2-byte length) replaced by an empty one
	for name, b := range map[string][]byte{"empty key": empty, "truncated": b[:len(b)-1]} {
		var a Attempt
		if err := (attemptSerializer{}).Deserialize(b, &a); err == nil {
			t.Errorf("%s: a malformed version 3 attempt was read: %+v", name, a)
		}
	}
	a.DPoPKey = make([]byte, maxDPoPKey+1)
	if _, err := (attemptSerializer{}).Serialize(&a); err == nil {
		t.Error("an attempt with a DPoP key over the limit was serialized")
	}
}
