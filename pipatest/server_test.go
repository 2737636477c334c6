package pipatest_test

// Tests of the server itself: its discovery document and keys, Handler on
// an unstarted server, concurrent use and bad input (helpers in
// helpers_test.go).

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth/pipatest"
)

func TestDiscovery(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			var s *pipatest.Server
			if tls {
				s = pipatest.NewTLSServer()
			} else {
				s = pipatest.NewServer()
			}
			defer s.Close()
			wantScheme := map[bool]string{false: "http://127.0.0.1:", true: "https://127.0.0.1:"}[tls]
			if !strings.HasPrefix(s.URL, wantScheme) || strings.HasSuffix(s.URL, "/") {
				t.Fatalf("URL = %q", s.URL)
			}
			resp, err := s.Client().Get(s.URL + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var doc map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			want := map[string]any{
				"issuer":                                s.URL,
				"authorization_endpoint":                s.URL + "/authorize",
				"token_endpoint":                        s.URL + "/token",
				"jwks_uri":                              s.URL + "/jwks",
				"end_session_endpoint":                  s.URL + "/end_session",
				"userinfo_endpoint":                     s.URL + "/userinfo",
				"response_types_supported":              []any{"code"},
				"subject_types_supported":               []any{"pairwise"},
				"id_token_signing_alg_values_supported": []any{"RS256"},
				"scopes_supported":                      []any{"openid", "email", "offline_access"},
				"revocation_endpoint":                   s.URL + "/revoke",
				"token_endpoint_auth_methods_supported": []any{"client_secret_post", "client_secret_basic", "private_key_jwt"},
				"pushed_authorization_request_endpoint": s.URL + "/par",
				"dpop_signing_alg_values_supported":     []any{"ES256", "PS256", "RS256"},
				"code_challenge_methods_supported":      []any{"S256"},
				"grant_types_supported":                 []any{"authorization_code", "refresh_token"},
			}
			for k, w := range want {
				if got, _ := json.Marshal(doc[k]); string(got) != string(must(json.Marshal(w))) {
					t.Errorf("%s = %s, want %s", k, got, must(json.Marshal(w)))
				}
			}

			// go-oidc accepts it.
			p, err := oidc.NewProvider(oidc.ClientContext(t.Context(), s.Client()), s.URL)
			if err != nil {
				t.Fatal(err)
			}
			if p.Endpoint().TokenURL != s.URL+"/token" || p.UserInfoEndpoint() != s.URL+"/userinfo" {
				t.Errorf("provider endpoints %+v %s", p.Endpoint(), p.UserInfoEndpoint())
			}

			// JWKS.
			resp2, err := s.Client().Get(s.URL + "/jwks")
			if err != nil {
				t.Fatal(err)
			}
			defer resp2.Body.Close()
			var set jose.JSONWebKeySet
			if err := json.NewDecoder(resp2.Body).Decode(&set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 || set.Keys[0].KeyID == "" || set.Keys[0].Algorithm != "RS256" || set.Keys[0].Use != "sig" || !set.Keys[0].IsPublic() {
				t.Errorf("JWKS = %+v", set.Keys)
			}
		})
	}
}

func TestHandlerAndUnstarted(t *testing.T) {
	s := pipatest.NewUnstartedServer()
	defer s.Close()
	if s.URL != "" || s.Client() == nil {
		t.Fatalf("unstarted: URL %q", s.URL)
	}
	// Mounted elsewhere, the issuer follows the request.
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc["issuer"] != ts.URL || doc["token_endpoint"] != ts.URL+"/token" {
		t.Errorf("discovery %v", doc)
	}
	resp, err = ts.Client().Get(ts.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}

	s.Start()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q", s.URL)
	}
	if _, err := oidc.NewProvider(oidc.ClientContext(t.Context(), s.Client()), s.URL); err != nil {
		t.Error(err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	v := verifier(t, s, id)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if i%4 == 0 {
				s.SetBehavior(pipatest.Behavior{})
				s.AddUser(pipatest.User{Name: "u" + string(rune('a'+i))})
				s.RevokeRefreshTokens("nobody")
				s.TokenRequests()
				s.LastTokenRequest()
				s.Users()
			}
			p := authParams(id)
			status, loc, _ := authorize(t, s, p)
			if status != http.StatusFound {
				t.Errorf("authorize: %d", status)
				return
			}
			resp, m := tokenRequest(t, s, authPost, id, secret, codeForm(loc.Query().Get("code"), testRedirect))
			if resp.StatusCode != 200 {
				t.Errorf("token: %d %v", resp.StatusCode, m)
				return
			}
			if _, err := verify(t, v, s, str(m["id_token"])); err != nil {
				t.Error(err)
			}
			if status, m := refresh(t, s, id, secret, str(m["refresh_token"]), nil); status != 200 {
				t.Errorf("refresh: %d %v", status, m)
			}
		})
	}
	wg.Wait()
}

// TestBadInput sends malformed requests to every endpoint: each must get a
// clean 4xx answer.
func TestBadInput(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.SetInteractive(true)
	paths := []string{"/.well-known/openid-configuration", "/authorize", "/token", "/jwks", "/end_session", "/userinfo"}
	queries := []string{"", "?%zz", "?client_id=&redirect_uri=", "?client_id=pipatest-client&redirect_uri=%00", "?id_token_hint=a.b.c&post_logout_redirect_uri=x"}
	bodies := []struct{ ct, body string }{
		{"", ""},
		{"application/x-www-form-urlencoded", "%zz=%%"},
		{"application/x-www-form-urlencoded", "grant_type=authorization_code&code=x&client_id=pipatest-client&client_secret=pipatest-secret"},
		{"application/x-www-form-urlencoded", "csrf=x&action=approve&client_id=" + strings.Repeat("a", 70000)},
		{"application/x-www-form-urlencoded; charset=\"", "a=b"},
		{"multipart/form-data; boundary=x", "--x--"},
	}
	for _, p := range paths {
		for _, q := range queries {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
				for _, b := range bodies {
					req, _ := http.NewRequest(method, s.URL+p+q, strings.NewReader(b.body))
					if b.ct != "" {
						req.Header.Set("Content-Type", b.ct)
					}
					req.Header.Set("Authorization", "Basic %%%")
					resp, err := noRedirects(s.Client()).Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						t.Errorf("%s %s%s (%q): status %d", method, p, q, b.ct, resp.StatusCode)
					}
				}
			}
		}
	}
}
