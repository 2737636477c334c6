package pipatest_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/pipaauth/pipaauth/pipatest"
)

// User.Claims go into ID tokens and userinfo answers, UserInfoClaims into
// userinfo answers only; neither replaces the server's own claims, and a
// change shows at the next refresh.
func TestUserClaims(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.SetUser(pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true,
		Claims:         map[string]any{"name": "Alice", "groups": []string{"admins"}, "sub": "forged", "email": "forged@example.com"},
		UserInfoClaims: map[string]any{"roles": []string{"reader"}, "iss": "forged"}})
	m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, code(t, s, authParams(pipatest.DefaultClientID)))
	claims, _ := rawClaims(t, str(m["id_token"]))
	sub := s.Subject(pipatest.DefaultClientID, "alice")
	if claims["name"] != "Alice" || fmt.Sprint(claims["groups"]) != "[admins]" || claims["sub"] != sub || claims["email"] != "alice@example.com" {
		t.Errorf("ID token claims %v: want name, groups, and the server's sub and email", claims)
	}
	if _, ok := claims["roles"]; ok {
		t.Errorf("ID token has roles, a UserInfoClaims claim: %v", claims)
	}
	userinfo := func(at string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		_, info := doJSON(t, s, req)
		return info
	}
	info := userinfo(str(m["access_token"]))
	if info["name"] != "Alice" || fmt.Sprint(info["roles"]) != "[reader]" || info["sub"] != sub || info["email"] != "alice@example.com" {
		t.Errorf("userinfo %v: want name, roles, and the server's sub and email", info)
	}
	if _, ok := info["iss"]; ok {
		t.Errorf("userinfo has iss from UserInfoClaims: %v", info)
	}

	// AddUser with new claims shows at the next refresh.
	s.AddUser(pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true,
		Claims: map[string]any{"name": "Alice L."}})
	status, r := refresh(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, str(m["refresh_token"]), nil)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, r)
	}
	claims, _ = rawClaims(t, str(r["id_token"]))
	if _, ok := claims["groups"]; ok || claims["name"] != "Alice L." {
		t.Errorf("refreshed ID token claims %v: want the new name and no groups", claims)
	}
	if info := userinfo(str(r["access_token"])); info["name"] != "Alice L." || info["roles"] != nil {
		t.Errorf("userinfo after the change: %v", info)
	}
}
