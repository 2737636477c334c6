package pipatest_test

// Tests of the provider's own session and of ending it, revocation, and
// (issue 8) offline access and userinfo behaviours (helpers in
// helpers_test.go).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth/pipatest"
)

func TestProviderSession(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	b := browser(t, s)
	params := authParams(pipatest.DefaultClientID)

	// Automatic mode: the first login starts a provider session named in
	// the ID token's sid, with auth_time.
	status, _, loc := send(t, b, s.URL+"/authorize?"+params.Encode())
	if status != http.StatusFound {
		t.Fatalf("authorize: %d", status)
	}
	m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, loc.Query().Get("code"))
	idToken := str(m["id_token"])
	claims, _ := rawClaims(t, idToken)
	if str(claims["sid"]) == "" || claims["auth_time"] == nil {
		t.Errorf("ID token claims %v, want sid and auth_time", claims)
	}
	if n := s.ActiveSessions("alice"); n != 1 {
		t.Fatalf("ActiveSessions = %d, want 1", n)
	}

	// Interactive mode with a live session: no page (single sign-on), same
	// sid; prompt=login and prompt=consent show the page; prompt=none
	// passes.
	s.SetInteractive(true)
	if status, _, loc := send(t, b, s.URL+"/authorize?"+params.Encode()); status != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("authorize with a live session: %d, want 302 with a code", status)
	}
	for _, p := range []string{"login", "consent"} {
		q := cloneValues(params)
		q.Set("prompt", p)
		if status, body, _ := send(t, b, s.URL+"/authorize?"+q.Encode()); status != http.StatusOK || !strings.Contains(body, "Sign in with PiPA") {
			t.Errorf("prompt=%s with a live session: %d, want the sign-in page", p, status)
		}
	}
	q := cloneValues(params)
	q.Set("prompt", "none")
	if status, _, loc := send(t, b, s.URL+"/authorize?"+q.Encode()); status != http.StatusFound || loc.Query().Get("code") == "" {
		t.Errorf("prompt=none with a live session: %d, want a code", status)
	}

	// The strict end-session endpoint refuses post_logout_redirect_uri
	// without id_token_hint, and keeps the session.
	s.SetBehavior(pipatest.Behavior{RequireIDTokenHint: true})
	bye := url.Values{"client_id": {pipatest.DefaultClientID}, "post_logout_redirect_uri": {"https://app.example/bye"}}
	if status, body, _ := send(t, b, s.URL+"/end_session?"+bye.Encode()); status != http.StatusBadRequest || !strings.Contains(body, "id_token_hint is missing") {
		t.Errorf("end session without id_token_hint: %d %q, want 400", status, body)
	}
	if n := s.ActiveSessions("alice"); n != 1 {
		t.Fatalf("after a refused logout ActiveSessions = %d, want 1", n)
	}
	// A hint for another client is refused.
	s.RegisterClient(pipatest.Client{ID: "other", Secret: "other-secret"})
	other := url.Values{"client_id": {"other"}, "id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://app.example/bye"}}
	if status, _, _ := send(t, b, s.URL+"/end_session?"+other.Encode()); status != http.StatusBadRequest {
		t.Errorf("end session with another client's hint: %d, want 400", status)
	}
	// With the hint: the session ends and the browser goes back.
	bye.Set("id_token_hint", idToken)
	if status, _, loc := send(t, b, s.URL+"/end_session?"+bye.Encode()); status != http.StatusFound || loc.String() != "https://app.example/bye" {
		t.Fatalf("end session with id_token_hint: %d to %v, want 302 to the post-logout URL", status, loc)
	}
	if n := s.ActiveSessions("alice"); n != 0 {
		t.Errorf("after logout ActiveSessions = %d, want 0", n)
	}
	if status, body, _ := send(t, b, s.URL+"/authorize?"+params.Encode()); status != http.StatusOK || !strings.Contains(body, "Sign in with PiPA") {
		t.Errorf("authorize after logout: %d, want the sign-in page", status)
	}
	q.Set("prompt", "none")
	if status, _, loc := send(t, b, s.URL+"/authorize?"+q.Encode()); status != http.StatusFound || loc.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none after logout: %d to %v, want error=login_required", status, loc)
	}
}

func TestRevocation(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, code(t, s, authParams(pipatest.DefaultClientID)))
	rt, at := str(m["refresh_token"]), str(m["access_token"])

	revoke := func(id, secret string, form url.Values) int {
		t.Helper()
		form.Set("client_id", id)
		form.Set("client_secret", secret)
		resp, _ := postForm(t, s, s.URL+"/revoke", form)
		return resp.StatusCode
	}
	if st := revoke(pipatest.DefaultClientID, "wrong", url.Values{"token": {rt}}); st != http.StatusUnauthorized {
		t.Errorf("revoke with a wrong secret: %d, want 401", st)
	}
	s.RegisterClient(pipatest.Client{ID: "other", Secret: "other-secret"})
	if st := revoke("other", "other-secret", url.Values{"token": {rt}}); st != http.StatusBadRequest {
		t.Errorf("revoke another client's token: %d, want 400", st)
	}
	if st := revoke(pipatest.DefaultClientID, pipatest.DefaultClientSecret, url.Values{"token": {"unknown"}}); st != http.StatusOK {
		t.Errorf("revoke an unknown token: %d, want 200 (RFC 7009 2.2)", st)
	}
	if st := revoke(pipatest.DefaultClientID, pipatest.DefaultClientSecret, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); st != http.StatusOK {
		t.Fatalf("revoke: %d, want 200", st)
	}
	got := s.Revocations()
	if len(got) != 2 || got[0].Kind != "" || got[1] != (pipatest.Revocation{Token: rt, TokenTypeHint: "refresh_token", Kind: "refresh_token", ClientAuth: "client_secret_post"}) {
		t.Errorf("Revocations = %+v", got)
	}
	status, e := refresh(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, rt, nil)
	wantOAuthError(t, status, e, http.StatusBadRequest, "invalid_grant")
	if st := userinfoStatus(t, s, at); st != http.StatusUnauthorized {
		t.Errorf("userinfo with an access token of the revoked grant: %d, want 401", st)
	}
	s.SetBehavior(pipatest.Behavior{RevocationStatus: http.StatusServiceUnavailable})
	if st := revoke(pipatest.DefaultClientID, pipatest.DefaultClientSecret, url.Values{"token": {at}}); st != http.StatusServiceUnavailable {
		t.Errorf("revoke with RevocationStatus: %d, want 503", st)
	}
}

func TestOfflineAccessAndRefreshErrors(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.SetBehavior(pipatest.Behavior{OfflineAccessOnly: true})
	params := authParams(pipatest.DefaultClientID)
	params.Set("scope", "openid offline_access")
	m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, code(t, s, params))
	if _, ok := m["refresh_token"]; ok || m["scope"] != "openid" {
		t.Errorf("offline_access without prompt=consent: scope %v, refresh token %v; want neither", m["scope"], ok)
	}
	params.Set("prompt", "consent")
	m = exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, code(t, s, params))
	rt := str(m["refresh_token"])
	if rt == "" || m["scope"] != "openid offline_access" {
		t.Fatalf("offline_access with prompt=consent: %v, want a refresh token", m)
	}
	s.SetBehavior(pipatest.Behavior{RefreshError: "invalid_grant"})
	status, e := refresh(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, rt, nil)
	wantOAuthError(t, status, e, http.StatusOK, "invalid_grant")
	s.SetBehavior(pipatest.Behavior{})
	if status, _ := refresh(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, rt, nil); status != http.StatusOK {
		t.Errorf("the refresh token was consumed by RefreshError: %d", status)
	}
}

func TestUserInfoBehaviors(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.SetBehavior(pipatest.Behavior{EmailOnlyAtUserInfo: true, UserInfoWrongSubject: true})
	m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, code(t, s, authParams(pipatest.DefaultClientID)))
	claims, _ := rawClaims(t, str(m["id_token"]))
	if _, ok := claims["email"]; ok {
		t.Errorf("EmailOnlyAtUserInfo: the ID token has email")
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+str(m["access_token"]))
	_, info := doJSON(t, s, req)
	if info["email"] != "alice@example.com" || info["sub"] == claims["sub"] || str(info["sub"]) == "" {
		t.Errorf("userinfo = %v, want alice's email under another sub than %v", info, claims["sub"])
	}
}

func TestEndSession(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "strict", Secret: "x", PostLogoutRedirectURLs: []string{"https://strict.example/bye"}})
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	hint := str(exchange(t, s, id, secret, code(t, s, authParams(id)))["id_token"])

	tests := []struct {
		name       string
		params     url.Values
		wantStatus int
		wantLoc    string
	}{
		{"no parameters", url.Values{}, 200, ""},
		{"client only", url.Values{"client_id": {id}}, 200, ""},
		{"any URL for the default client", url.Values{"client_id": {id}, "post_logout_redirect_uri": {"https://app.example/bye?x=1"}, "state": {"s1"}},
			302, "https://app.example/bye?x=1&state=s1"},
		{"no state", url.Values{"client_id": {id}, "post_logout_redirect_uri": {"https://app.example/bye"}}, 302, "https://app.example/bye"},
		{"registered URL", url.Values{"client_id": {"strict"}, "post_logout_redirect_uri": {"https://strict.example/bye"}, "state": {"s2"}},
			302, "https://strict.example/bye?state=s2"},
		{"unregistered URL", url.Values{"client_id": {"strict"}, "post_logout_redirect_uri": {"https://evil.example/bye"}}, 400, ""},
		{"javascript URL", url.Values{"client_id": {id}, "post_logout_redirect_uri": {"javascript:alert(1)"}}, 400, ""},
		{"URL without client", url.Values{"post_logout_redirect_uri": {"https://app.example/bye"}}, 400, ""},
		{"unknown client", url.Values{"client_id": {"nobody"}, "post_logout_redirect_uri": {"https://app.example/bye"}}, 400, ""},
		{"id_token_hint names the client", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://app.example/bye"}},
			302, "https://app.example/bye"},
		{"id_token_hint of another client", url.Values{"client_id": {"strict"}, "id_token_hint": {hint}}, 400, ""},
		{"forged id_token_hint", url.Values{"id_token_hint": {"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}}, 400, ""},
		{"repeated state", url.Values{"client_id": {id}, "state": {"a", "b"}}, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, s, s.URL+"/end_session?"+tc.params.Encode())
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Location") != tc.wantLoc {
				t.Fatalf("status %d, Location %q; want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.wantStatus, tc.wantLoc)
			}
			if tc.wantStatus == 200 && !strings.Contains(body, "You are signed out of PiPA") {
				t.Errorf("page %s", body)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		resp, _ := postForm(t, s, s.URL+"/end_session", url.Values{"client_id": {id}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"p"}})
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://app.example/bye?state=p" {
			t.Errorf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("hint after key rotation", func(t *testing.T) {
		s.RotateKeys()
		resp, _ := get(t, s, s.URL+"/end_session?"+url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://app.example/bye"}}.Encode())
		if resp.StatusCode != 302 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}
