package session

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Format 5 carries the kept claims (in the session cookie) and the DPoP
// key (with the tokens), in cookie mode and in a store record alike.
func TestClaimsAndDPoPKeyRoundTrip(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	key := bytes.Repeat([]byte{0x30, 0x81}, 69)
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	d := sample(c.t)
	d.User.Claims = `{"groups":["admins"],"name":"Alice"}`
	d.Tokens = &Tokens{AccessToken: jwt, RefreshToken: "rt", TokenType: "DPoP", Expiry: c.t.Add(time.Hour).Add(250 * time.Millisecond), IssuedAt: c.t, DPoPKey: key}
	d.IDToken = jwt

	m := newManager(t, c, func(o *Options) { o.CacheSize = -1 })
	r := roundTrip(t, m, d)
	got, err := m.Load(r)
	if err != nil || got.User != d.User {
		t.Fatalf("Load = %+v, %v; want user %+v with its claims", got, err, d.User)
	}
	if got.Tokens != nil || got.IDToken != "" {
		t.Errorf("the session cookie carries tokens %v or an ID token %q", got.Tokens, got.IDToken)
	}
	tok, err := m.LoadTokens(r, got)
	if err != nil || tok == nil || !bytes.Equal(tok.DPoPKey, key) || tok.AccessToken != jwt || tok.TokenType != "DPoP" || !tok.Expiry.Equal(d.Tokens.Expiry) {
		t.Errorf("LoadTokens = %+v, %v; want the tokens with their DPoP key and millisecond expiry", tok, err)
	}
	r.URL.Path = DefaultLogoutPath
	if idt, err := m.LoadIDToken(r, got); err != nil || idt != jwt {
		t.Errorf("LoadIDToken = %q, %v; want %q", idt, err, jwt)
	}

	raw, err := d.marshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var rec Data
	if err := rec.unmarshalBinary(raw); err != nil || rec.User != d.User || rec.IDToken != jwt || rec.Tokens == nil || !bytes.Equal(rec.Tokens.DPoPKey, key) {
		t.Errorf("a record round trip gave %+v, %v", rec, err)
	}
	d.Tokens.DPoPKey = make([]byte, maxDPoPKey+1)
	if _, err := d.marshalBinary(); err == nil {
		t.Error("a DPoP key longer than the decoder takes was serialized")
	}
	d.Tokens.DPoPKey = nil
	d.User.Claims = strings.Repeat("x", maxClaims+1)
	if _, err := d.marshalBinary(); err == nil {
		t.Error("claims longer than the decoder takes were serialized")
	}
}

// A compact JWS is stored with its segments decoded and comes back byte
// for byte; anything else is stored as it is.
func TestTokenCompaction(t *testing.T) {
	for _, tok := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"a.b.c.d.e",
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c3", // nonzero padding bits: kept as text
		"opaque-token", "", "a..b", "a=.b.c",
	} {
		b := appendToken(nil, tok)
		r := reader{b: b}
		if got := r.token(); got != tok || r.err || len(r.b) != 0 {
			t.Errorf("token %q came back as %q (err %v)", tok, got, r.err)
		}
	}
	if _, ok := compactSegments("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"); !ok {
		t.Error("a compact JWS is not compacted")
	}
	if _, ok := compactSegments("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c3"); ok {
		t.Error("a segment that would not encode back the same was compacted")
	}
}
