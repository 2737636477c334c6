package pipatest_test

// Tests of refresh tokens and the userinfo endpoint (helpers in
// helpers_test.go).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/pipatest"
)

func TestRefresh(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "other", Secret: "other-secret"})
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	v := verifier(t, s, id)

	t.Run("rotation and reuse detection", func(t *testing.T) {
		m1 := exchange(t, s, id, secret, code(t, s, authParams(id)))
		rt1 := str(m1["refresh_token"])

		// Another client cannot use it, and that does not consume it.
		status, m := refresh(t, s, "other", "other-secret", rt1, nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")

		status, m2 := refresh(t, s, id, secret, rt1, nil)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, m2)
		}
		if tr, _ := s.LastTokenRequest(); tr.GrantType != "refresh_token" || tr.ClientAuth != "client_secret_basic" {
			t.Errorf("LastTokenRequest %+v", tr)
		}
		rt2, at2 := str(m2["refresh_token"]), str(m2["access_token"])
		if rt2 == "" || rt2 == rt1 || at2 == "" || at2 == m1["access_token"] {
			t.Fatalf("tokens not rotated: %v", m2)
		}
		if m2["user_id"] != s.Subject(id, "alice") || m2["token_type"] != "Bearer" || m2["scope"] != "openid email" {
			t.Errorf("refresh response %v", m2)
		}
		idt, err := verify(t, v, s, str(m2["id_token"]))
		if err != nil {
			t.Fatal(err)
		}
		if idt.Subject != s.Subject(id, "alice") || idt.VerifyAccessToken(at2) != nil {
			t.Errorf("refreshed ID token sub %q", idt.Subject)
		}
		if userinfoStatus(t, s, at2) != 200 {
			t.Error("userinfo refused the new access token")
		}

		// Reuse of rt1: refused, and the whole family is revoked.
		status, m = refresh(t, s, id, secret, rt1, nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")
		status, m = refresh(t, s, id, secret, rt2, nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")
		if userinfoStatus(t, s, at2) != http.StatusUnauthorized {
			t.Error("userinfo accepted an access token of a revoked family")
		}
	})

	t.Run("scope narrowing", func(t *testing.T) {
		m := exchange(t, s, id, secret, code(t, s, authParams(id)))
		status, m2 := refresh(t, s, id, secret, str(m["refresh_token"]), url.Values{"scope": {"openid"}})
		if status != 200 || m2["scope"] != "openid" {
			t.Fatalf("narrowed refresh: %d %v", status, m2)
		}
		idt, err := verify(t, v, s, str(m2["id_token"]))
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		idt.Claims(&c)
		if _, ok := c["email"]; ok {
			t.Errorf("email in a token for scope openid")
		}
		// The refresh token keeps the original grant.
		status, m3 := refresh(t, s, id, secret, str(m2["refresh_token"]), nil)
		if status != 200 || m3["scope"] != "openid email" {
			t.Fatalf("refresh: %d %v", status, m3)
		}
		status, m4 := refresh(t, s, id, secret, str(m3["refresh_token"]), url.Values{"scope": {"openid profile"}})
		wantOAuthError(t, status, m4, 400, "invalid_scope")
	})

	t.Run("RevokeRefreshTokens", func(t *testing.T) {
		users := map[string]pipatest.User{}
		for _, u := range s.Users() {
			users[u.Name] = u
		}
		s.SetUser(users["alice"])
		ma := exchange(t, s, id, secret, code(t, s, authParams(id)))
		s.SetUser(users["bob"])
		mb := exchange(t, s, id, secret, code(t, s, authParams(id)))
		s.SetUser(users["alice"])

		s.RevokeRefreshTokens("alice")
		status, m := refresh(t, s, id, secret, str(ma["refresh_token"]), nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")
		if userinfoStatus(t, s, str(ma["access_token"])) != http.StatusUnauthorized {
			t.Error("userinfo accepted a revoked user's access token")
		}
		status, m = refresh(t, s, id, secret, str(mb["refresh_token"]), nil)
		if status != 200 || m["user_id"] != s.Subject(id, "bob") {
			t.Errorf("bob's refresh: %d %v", status, m)
		}
		// New sign-ins of alice work again.
		ma2 := exchange(t, s, id, secret, code(t, s, authParams(id)))
		if status, m := refresh(t, s, id, secret, str(ma2["refresh_token"]), nil); status != 200 {
			t.Errorf("alice's new refresh: %d %v", status, m)
		}
	})

	t.Run("errors", func(t *testing.T) {
		status, m := refresh(t, s, id, secret, "unknown", nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")
		status, m = refresh(t, s, id, secret, "", nil)
		wantOAuthError(t, status, m, 400, "invalid_request")
	})

	t.Run("access token lifetime", func(t *testing.T) {
		s.SetAccessTokenLifetime(90 * time.Second)
		defer s.SetAccessTokenLifetime(0)
		m := exchange(t, s, id, secret, code(t, s, authParams(id)))
		if m["expires_in"] != json.Number("90") {
			t.Errorf("expires_in %v", m["expires_in"])
		}
		status, m2 := refresh(t, s, id, secret, str(m["refresh_token"]), nil)
		if status != 200 || m2["expires_in"] != json.Number("90") {
			t.Errorf("refresh expires_in %v", m2["expires_in"])
		}
		at := str(m2["access_token"])
		if userinfoStatus(t, s, at) != 200 {
			t.Error("fresh access token refused")
		}
		pipatest.SetNow(s, func() time.Time { return time.Now().Add(91 * time.Second) })
		defer pipatest.SetNow(s, time.Now)
		if userinfoStatus(t, s, at) != http.StatusUnauthorized {
			t.Error("expired access token accepted")
		}
	})
}

func userinfoStatus(t *testing.T, s *pipatest.Server, at string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, _ := doJSON(t, s, req)
	return resp.StatusCode
}

func TestUserinfo(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	users := s.Users()
	for _, u := range users {
		s.SetUser(u)
		m := exchange(t, s, id, secret, code(t, s, authParams(id)))
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+str(m["access_token"]))
		resp, info := doJSON(t, s, req)
		if resp.StatusCode != 200 || info["sub"] != s.Subject(id, u.Name) {
			t.Errorf("%s: %d %v", u.Name, resp.StatusCode, info)
		}
		wantEmail := map[bool]string{true: u.Email}[u.ShareEmail]
		if str(info["email"]) != wantEmail {
			t.Errorf("%s: email %v, want %q", u.Name, info["email"], wantEmail)
		}
	}
	for _, auth := range []string{"", "Bearer", "Bearer nope", "Basic eDp5"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, m := doJSON(t, s, req)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || m["error"] == nil {
			t.Errorf("Authorization %q: %d %v", auth, resp.StatusCode, m)
		}
	}
}
