package pipatest_test

// Tests of Behavior, the misbehaviours the server can be told to show, and
// of key rotation (helpers in helpers_test.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth/pipatest"
)

func TestBehaviors(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	v := verifier(t, s, id)
	realKid := func() string {
		resp, err := s.Client().Get(s.URL + "/jwks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		json.NewDecoder(resp.Body).Decode(&set)
		return set.Keys[0].KeyID
	}()

	type result struct {
		resp      map[string]any
		raw       []byte
		idt       *oidc.IDToken // nil if verification failed
		verifyErr error
		claims    map[string]any
		header    jose.Header
	}
	tests := []struct {
		name  string
		b     pipatest.Behavior
		check func(t *testing.T, r result)
	}{
		{"zero", pipatest.Behavior{}, func(t *testing.T, r result) {
			if r.verifyErr != nil || r.idt.VerifyAccessToken(str(r.resp["access_token"])) != nil {
				t.Errorf("verify: %v", r.verifyErr)
			}
		}},
		{"WrongNonce", pipatest.Behavior{WrongNonce: true}, func(t *testing.T, r result) {
			if r.verifyErr != nil || r.idt.Nonce == testNonce || r.idt.Nonce == "" {
				t.Errorf("nonce %v, err %v", r.claims["nonce"], r.verifyErr)
			}
		}},
		{"WrongIssuer", pipatest.Behavior{WrongIssuer: true}, func(t *testing.T, r result) {
			if r.verifyErr == nil || !strings.Contains(r.verifyErr.Error(), "issue") || r.claims["iss"] == s.URL {
				t.Errorf("iss %v, err %v", r.claims["iss"], r.verifyErr)
			}
		}},
		{"WrongAudience", pipatest.Behavior{WrongAudience: true}, func(t *testing.T, r result) {
			if r.verifyErr == nil || !strings.Contains(r.verifyErr.Error(), "audience") {
				t.Errorf("aud %v, err %v", r.claims["aud"], r.verifyErr)
			}
		}},
		{"ExtraAudience", pipatest.Behavior{ExtraAudience: true}, func(t *testing.T, r result) {
			if r.verifyErr != nil || len(r.idt.Audience) != 2 || !slices.Contains(r.idt.Audience, id) {
				t.Errorf("aud %v, err %v", r.claims["aud"], r.verifyErr)
			}
			if r.claims["azp"] != id {
				t.Errorf("azp %v", r.claims["azp"])
			}
		}},
		{"WrongAZP", pipatest.Behavior{WrongAZP: true}, func(t *testing.T, r result) {
			if r.verifyErr != nil || r.claims["azp"] == id || str(r.claims["azp"]) == "" {
				t.Errorf("azp %v, err %v", r.claims["azp"], r.verifyErr)
			}
		}},
		{"Expired", pipatest.Behavior{Expired: true}, func(t *testing.T, r result) {
			var te *oidc.TokenExpiredError
			if !errors.As(r.verifyErr, &te) {
				t.Errorf("err %v", r.verifyErr)
			}
			exp, _ := r.claims["exp"].(json.Number).Int64()
			iat, _ := r.claims["iat"].(json.Number).Int64()
			if d := time.Since(time.Unix(exp, 0)); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("exp %v ago", d)
			}
			if d := time.Since(time.Unix(iat, 0)); d < 119*time.Minute || d > 121*time.Minute {
				t.Errorf("iat %v ago", d)
			}
		}},
		{"IssuedInFuture", pipatest.Behavior{IssuedInFuture: true}, func(t *testing.T, r result) {
			iat, _ := r.claims["iat"].(json.Number).Int64()
			if d := time.Until(time.Unix(iat, 0)); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("iat in %v", d)
			}
		}},
		{"OmitSubject", pipatest.Behavior{OmitSubject: true}, func(t *testing.T, r result) {
			if _, ok := r.claims["sub"]; ok {
				t.Errorf("sub present")
			}
			if r.resp["user_id"] != s.Subject(id, "alice") {
				t.Errorf("user_id %v", r.resp["user_id"])
			}
		}},
		{"OmitIssuedAt", pipatest.Behavior{OmitIssuedAt: true}, func(t *testing.T, r result) {
			if _, ok := r.claims["iat"]; ok {
				t.Errorf("iat present")
			}
		}},
		{"OmitNonce", pipatest.Behavior{OmitNonce: true}, func(t *testing.T, r result) {
			if _, ok := r.claims["nonce"]; ok || r.verifyErr != nil || r.idt.Nonce != "" {
				t.Errorf("nonce %v, err %v", r.claims["nonce"], r.verifyErr)
			}
		}},
		{"OmitIDToken", pipatest.Behavior{OmitIDToken: true}, func(t *testing.T, r result) {
			if _, ok := r.resp["id_token"]; ok {
				t.Errorf("id_token present")
			}
			if str(r.resp["access_token"]) == "" {
				t.Errorf("no access token")
			}
		}},
		{"OmitUserID", pipatest.Behavior{OmitUserID: true}, func(t *testing.T, r result) {
			if _, ok := r.resp["user_id"]; ok {
				t.Errorf("user_id present")
			}
		}},
		{"BadSignature", pipatest.Behavior{BadSignature: true}, func(t *testing.T, r result) {
			if r.verifyErr == nil || !strings.Contains(r.verifyErr.Error(), "signature") {
				t.Errorf("err %v", r.verifyErr)
			}
			if r.header.KeyID != realKid {
				t.Errorf("kid %q, want the real %q", r.header.KeyID, realKid)
			}
		}},
		{"BadAtHash", pipatest.Behavior{BadAtHash: true}, func(t *testing.T, r result) {
			if r.verifyErr != nil {
				t.Fatal(r.verifyErr)
			}
			if err := r.idt.VerifyAccessToken(str(r.resp["access_token"])); err == nil {
				t.Errorf("at_hash matches")
			}
		}},
		{"UserID float64", pipatest.Behavior{UserID: float64(12345)}, func(t *testing.T, r result) {
			if !bytes.Contains(r.raw, []byte(`"user_id":12345`)) {
				t.Errorf("body %s", r.raw)
			}
		}},
		{"UserID json.Number", pipatest.Behavior{UserID: json.Number("98765432109876543210")}, func(t *testing.T, r result) {
			if !bytes.Contains(r.raw, []byte(`"user_id":98765432109876543210`)) {
				t.Errorf("body %s", r.raw)
			}
		}},
		{"UserID int64", pipatest.Behavior{UserID: int64(1) << 60}, func(t *testing.T, r result) {
			if !bytes.Contains(r.raw, []byte(`"user_id":1152921504606846976`)) {
				t.Errorf("body %s", r.raw)
			}
		}},
		{"ClaimsHook", pipatest.Behavior{ClaimsHook: func(c map[string]any) {
			c["groups"] = []string{"admins"}
			delete(c, "azp")
		}}, func(t *testing.T, r result) {
			var c struct {
				Groups []string `json:"groups"`
				AZP    *string  `json:"azp"`
			}
			if r.verifyErr != nil || r.idt.Claims(&c) != nil || !slices.Equal(c.Groups, []string{"admins"}) || c.AZP != nil {
				t.Errorf("claims %v, err %v", r.claims, r.verifyErr)
			}
		}},
		{"TokenHook", pipatest.Behavior{TokenHook: func(m map[string]any) {
			m["token_type"] = "bearer"
			m["extra"] = "x"
		}}, func(t *testing.T, r result) {
			if r.resp["token_type"] != "bearer" || r.resp["extra"] != "x" {
				t.Errorf("response %v", r.resp)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetBehavior(tc.b)
			defer s.SetBehavior(pipatest.Behavior{})
			c := code(t, s, authParams(id))
			body := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {testRedirect},
				"client_id": {id}, "client_secret": {secret}}
			resp, err := s.Client().PostForm(s.URL+"/token", body)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			var r result
			r.raw = raw
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&r.resp); err != nil {
				t.Fatal(err)
			}
			if tok := str(r.resp["id_token"]); tok != "" {
				r.claims, r.header = rawClaims(t, tok)
				r.idt, r.verifyErr = verify(t, v, s, tok)
			}
			tc.check(t, r)
		})
	}

	t.Run("DiscoveryHook", func(t *testing.T) {
		s.SetBehavior(pipatest.Behavior{DiscoveryHook: func(doc map[string]any) {
			delete(doc, "code_challenge_methods_supported")
			doc["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
		}})
		defer s.SetBehavior(pipatest.Behavior{})
		resp, doc := doJSON(t, s, must(http.NewRequest(http.MethodGet, s.URL+"/.well-known/openid-configuration", nil)))
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
		if _, ok := doc["code_challenge_methods_supported"]; ok {
			t.Error("code_challenge_methods_supported present")
		}
		if got := doc["token_endpoint_auth_methods_supported"]; len(got.([]any)) != 1 {
			t.Errorf("token_endpoint_auth_methods_supported = %v", got)
		}
	})

	t.Run("TokenStatus", func(t *testing.T) {
		for _, tc := range []struct {
			status  int
			wantErr string
		}{{500, "server_error"}, {503, "server_error"}, {400, "invalid_grant"}} {
			c := code(t, s, authParams(id))
			s.SetBehavior(pipatest.Behavior{TokenStatus: tc.status})
			resp, m := tokenRequest(t, s, authPost, id, secret, codeForm(c, testRedirect))
			wantOAuthError(t, resp.StatusCode, m, tc.status, tc.wantErr)
			// The code was not consumed.
			s.SetBehavior(pipatest.Behavior{})
			exchange(t, s, id, secret, c)
		}
	})

	t.Run("TokenDelay", func(t *testing.T) {
		const delay = 300 * time.Millisecond
		s.SetBehavior(pipatest.Behavior{TokenDelay: delay})
		defer s.SetBehavior(pipatest.Behavior{})
		c := code(t, s, authParams(id))
		start := time.Now()
		exchange(t, s, id, secret, c)
		if d := time.Since(start); d < delay {
			t.Errorf("answered after %v, want >= %v", d, delay)
		}

		// A canceled request is abandoned without consuming the code.
		c = code(t, s, authParams(id))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/token", strings.NewReader(url.Values{
			"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {testRedirect},
			"client_id": {id}, "client_secret": {secret}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if _, err := s.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want deadline exceeded", err)
		}
		time.Sleep(delay) // let the handler see the cancellation
		s.SetBehavior(pipatest.Behavior{})
		exchange(t, s, id, secret, c)
	})

	t.Run("TokenDelay cut short by Close", func(t *testing.T) {
		s2 := pipatest.NewServer()
		s2.SetBehavior(pipatest.Behavior{TokenDelay: time.Hour})
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := s2.Client().PostForm(s2.URL+"/token", url.Values{"grant_type": {"refresh_token"}})
			if err == nil {
				resp.Body.Close()
			}
		}()
		for s2.TokenRequests() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		closed := make(chan struct{})
		go func() { s2.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("Close blocked on a delayed token request")
		}
		<-done
	})
}

func TestRotateKeys(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	jwksKid := func() []string {
		resp, err := s.Client().Get(s.URL + "/jwks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		return kids
	}
	idToken := func() string {
		return str(exchange(t, s, id, secret, code(t, s, authParams(id)))["id_token"])
	}

	oldKids := jwksKid()
	oldTok := idToken()
	v1 := verifier(t, s, id)
	if _, err := verify(t, v1, s, oldTok); err != nil {
		t.Fatal(err)
	}

	s.RotateKeys()
	newKids := jwksKid()
	if len(newKids) != 1 || newKids[0] == oldKids[0] {
		t.Fatalf("JWKS kids %v after rotation, before %v", newKids, oldKids)
	}
	newTok := idToken()
	if _, h := rawClaims(t, newTok); h.KeyID != newKids[0] {
		t.Errorf("new token kid %q, want %q", h.KeyID, newKids[0])
	}
	v2 := verifier(t, s, id)
	if _, err := verify(t, v2, s, oldTok); err == nil {
		t.Error("old-key token verifies against the new JWKS")
	}
	if _, err := verify(t, v2, s, newTok); err != nil {
		t.Errorf("new token: %v", err)
	}
	// A verifier that cached the old key fetches the new one.
	if _, err := verify(t, v1, s, newTok); err != nil {
		t.Errorf("new token with the old verifier: %v", err)
	}
}
