package pipatest_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth/pipatest"
)

// logoutVerifier is go-oidc's verifier for the server's tokens: its
// VerifyLogout is an independent check of what LogoutToken makes.
func logoutVerifier(t *testing.T, s *pipatest.Server, clientID string) *oidc.IDTokenVerifier {
	t.Helper()
	p, err := oidc.NewProvider(oidc.ClientContext(t.Context(), s.Client()), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return p.Verifier(&oidc.Config{ClientID: clientID})
}

// logoutClaims returns the claims and header of a token without verifying it.
func logoutClaims(t *testing.T, raw string) (map[string]any, jose.Header) {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(jws.UnsafePayloadWithoutVerification()))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m, jws.Signatures[0].Header
}

func TestBackChannelDiscovery(t *testing.T) {
	s := pipatest.NewTLSServer()
	defer s.Close()
	resp, err := s.Client().Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if doc[k] != true {
			t.Errorf("%s = %v, want true", k, doc[k])
		}
	}
}

func TestLogoutTokenValid(t *testing.T) {
	s := pipatest.NewTLSServer()
	defer s.Close()
	const client = pipatest.DefaultClientID
	v := logoutVerifier(t, s, client)
	ctx := oidc.ClientContext(t.Context(), s.Client())

	before := time.Now().Add(-time.Second)
	raw := s.LogoutToken(client, pipatest.LogoutTokenOptions{})
	lt, err := v.VerifyLogout(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc refuses the default logout token: %v", err)
	}
	if want := s.Subject(client, "alice"); lt.Subject != want {
		t.Errorf("sub = %q, want %q (the current user)", lt.Subject, want)
	}
	if lt.SessionID != "" || lt.TokenID == "" || lt.Issuer != s.URL {
		t.Errorf("sid %q, jti %q, iss %q", lt.SessionID, lt.TokenID, lt.Issuer)
	}
	if lt.IssuedAt.Before(before.Truncate(time.Second)) || lt.IssuedAt.After(time.Now()) {
		t.Errorf("iat = %v, want about now", lt.IssuedAt)
	}
	if got := lt.Expiry.Sub(lt.IssuedAt); got != pipatest.LogoutTokenLifetime {
		t.Errorf("exp - iat = %v, want %v", got, pipatest.LogoutTokenLifetime)
	}
	claims, hdr := logoutClaims(t, raw)
	if got := hdr.ExtraHeaders[jose.HeaderType]; got != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", got)
	}
	if hdr.KeyID == "" {
		t.Error("no kid")
	}
	ev, _ := claims["events"].(map[string]any)
	if m, ok := ev[pipatest.BackChannelLogoutEvent].(map[string]any); !ok || len(m) != 0 || len(ev) != 1 {
		t.Errorf("events = %v, want {%q: {}}", claims["events"], pipatest.BackChannelLogoutEvent)
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("a nonce claim")
	}
	if claims["aud"] != client {
		t.Errorf("aud = %v, want %q", claims["aud"], client)
	}
	if again := s.LogoutToken(client, pipatest.LogoutTokenOptions{}); must(v.VerifyLogout(ctx, again)).TokenID == lt.TokenID {
		t.Error("two tokens share a jti")
	}

	// By sid only, for another user and another client.
	s.RegisterClient(pipatest.Client{ID: "other", Secret: "x"})
	raw = s.LogoutToken("other", pipatest.LogoutTokenOptions{OmitSubject: true, SID: "sid-1", JTI: "jti-1"})
	lt, err = logoutVerifier(t, s, "other").VerifyLogout(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc refuses a sid-only token: %v", err)
	}
	if lt.Subject != "" || lt.SessionID != "sid-1" || lt.TokenID != "jti-1" {
		t.Errorf("sub %q sid %q jti %q", lt.Subject, lt.SessionID, lt.TokenID)
	}
	raw = s.LogoutToken(client, pipatest.LogoutTokenOptions{User: "bob", SID: "sid-2"})
	if lt = must(v.VerifyLogout(ctx, raw)); lt.Subject != s.Subject(client, "bob") || lt.SessionID != "sid-2" {
		t.Errorf("sub %q sid %q, want bob's and sid-2", lt.Subject, lt.SessionID)
	}
}

func TestLogoutTokenOptions(t *testing.T) {
	s := pipatest.NewTLSServer()
	defer s.Close()
	const client = pipatest.DefaultClientID
	v := logoutVerifier(t, s, client)
	ctx := oidc.ClientContext(t.Context(), s.Client())
	past := time.Now().Add(-time.Hour).Truncate(time.Second)

	tests := []struct {
		name string
		opts pipatest.LogoutTokenOptions
		// oidcRefuses: go-oidc's VerifyLogout refuses the token (the checks
		// it makes); the others are checked on the claims by check.
		oidcRefuses bool
		check       func(claims map[string]any, hdr jose.Header) bool
	}{
		{"subject verbatim", pipatest.LogoutTokenOptions{Subject: "raw-sub"}, false,
			func(c map[string]any, _ jose.Header) bool { return c["sub"] == "raw-sub" }},
		{"no sub no sid", pipatest.LogoutTokenOptions{OmitSubject: true}, true,
			func(c map[string]any, _ jose.Header) bool { _, ok := c["sub"]; return !ok }},
		{"no jti", pipatest.LogoutTokenOptions{OmitJTI: true}, true,
			func(c map[string]any, _ jose.Header) bool { _, ok := c["jti"]; return !ok }},
		{"old iat", pipatest.LogoutTokenOptions{IssuedAt: past}, true, // exp follows iat
			func(c map[string]any, _ jose.Header) bool {
				return c["iat"] == json.Number(must(json.Marshal(past.Unix())))
			}},
		{"no iat", pipatest.LogoutTokenOptions{OmitIssuedAt: true}, false,
			func(c map[string]any, _ jose.Header) bool { _, ok := c["iat"]; return !ok }},
		{"expired", pipatest.LogoutTokenOptions{Expiry: past}, true,
			func(c map[string]any, _ jose.Header) bool {
				return c["exp"] == json.Number(must(json.Marshal(past.Unix())))
			}},
		{"no exp", pipatest.LogoutTokenOptions{OmitExpiry: true}, true, // go-oidc follows errata set 1
			func(c map[string]any, _ jose.Header) bool { _, ok := c["exp"]; return !ok }},
		{"no events", pipatest.LogoutTokenOptions{OmitEvents: true}, true,
			func(c map[string]any, _ jose.Header) bool { _, ok := c["events"]; return !ok }},
		{"events value not an object", pipatest.LogoutTokenOptions{Events: map[string]any{pipatest.BackChannelLogoutEvent: "yes"}}, false,
			func(c map[string]any, _ jose.Header) bool {
				return c["events"].(map[string]any)[pipatest.BackChannelLogoutEvent] == "yes"
			}},
		{"nonce", pipatest.LogoutTokenOptions{Nonce: "n-1"}, true,
			func(c map[string]any, _ jose.Header) bool { return c["nonce"] == "n-1" }},
		{"other audience", pipatest.LogoutTokenOptions{Audience: []string{"someone-else"}}, true,
			func(c map[string]any, _ jose.Header) bool {
				a, _ := c["aud"].([]any)
				return len(a) == 1 && a[0] == "someone-else"
			}},
		{"other issuer", pipatest.LogoutTokenOptions{Issuer: "https://not-pipa.example"}, true,
			func(c map[string]any, _ jose.Header) bool { return c["iss"] == "https://not-pipa.example" }},
		{"typ JWT", pipatest.LogoutTokenOptions{Type: "JWT"}, false,
			func(_ map[string]any, h jose.Header) bool { return h.ExtraHeaders[jose.HeaderType] == "JWT" }},
		{"typ at+jwt", pipatest.LogoutTokenOptions{Type: "at+jwt"}, false,
			func(_ map[string]any, h jose.Header) bool { return h.ExtraHeaders[jose.HeaderType] == "at+jwt" }},
		{"no typ", pipatest.LogoutTokenOptions{OmitType: true}, false,
			func(_ map[string]any, h jose.Header) bool { _, ok := h.ExtraHeaders[jose.HeaderType]; return !ok }},
		{"wrong key", pipatest.LogoutTokenOptions{WrongKey: true}, true,
			func(map[string]any, jose.Header) bool { return true }},
		{"claims hook", pipatest.LogoutTokenOptions{ClaimsHook: func(c map[string]any) { c["sid"] = 42 }}, true,
			func(c map[string]any, _ jose.Header) bool { return c["sid"] == json.Number("42") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := s.LogoutToken(client, tt.opts)
			claims, hdr := logoutClaims(t, raw)
			if !tt.check(claims, hdr) {
				t.Errorf("claims %v, header %v: not as the option says", claims, hdr.ExtraHeaders)
			}
			_, err := v.VerifyLogout(ctx, raw)
			if got := err != nil; got != tt.oidcRefuses {
				t.Errorf("go-oidc VerifyLogout error = %v, want an error: %v", err, tt.oidcRefuses)
			}
		})
	}
}

func TestLogoutTokenUnstarted(t *testing.T) {
	s := pipatest.NewUnstartedServer()
	defer s.Close()
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "not started") {
				t.Errorf("recovered %v, want a panic naming the unstarted server", r)
			}
		}()
		s.LogoutToken(pipatest.DefaultClientID, pipatest.LogoutTokenOptions{})
	}()
	raw := s.LogoutToken(pipatest.DefaultClientID, pipatest.LogoutTokenOptions{Issuer: "https://pipa.example"})
	if c, _ := logoutClaims(t, raw); c["iss"] != "https://pipa.example" {
		t.Errorf("iss = %v", c["iss"])
	}
}
