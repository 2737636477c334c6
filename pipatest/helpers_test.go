package pipatest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/pipatest"
)

const (
	testRedirect = "https://app.example/callback"
	testState    = "state-123"
	testNonce    = "nonce-456"
)

// noRedirects returns a copy of c that does not follow redirects.
func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

func authParams(clientID string) url.Values {
	return url.Values{
		"client_id":     {clientID},
		"redirect_uri":  {testRedirect},
		"response_type": {"code"},
		"scope":         {"openid email"},
		"state":         {testState},
		"nonce":         {testNonce},
	}
}

// get does a GET without following redirects and returns the response with
// its body read.
func get(t *testing.T, s *pipatest.Server, u string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects(s.Client()).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func postForm(t *testing.T, s *pipatest.Server, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects(s.Client()).PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// authorize sends an authorization request and returns the status and the
// redirect location (nil if none).
func authorize(t *testing.T, s *pipatest.Server, params url.Values) (int, *url.URL, string) {
	t.Helper()
	resp, body := get(t, s, s.URL+"/authorize?"+params.Encode())
	loc, err := resp.Location()
	if err != nil {
		loc = nil
	}
	return resp.StatusCode, loc, body
}

// code runs an automatic authorization and returns the code.
func code(t *testing.T, s *pipatest.Server, params url.Values) string {
	t.Helper()
	status, loc, body := authorize(t, s, params)
	if status != http.StatusFound || loc == nil {
		t.Fatalf("authorize: status %d, location %v, body %s", status, loc, body)
	}
	q := loc.Query()
	if q.Get("code") == "" {
		t.Fatalf("authorize: no code in %s", loc)
	}
	if got := q.Get("state"); got != params.Get("state") {
		t.Fatalf("authorize: state %q, want %q", got, params.Get("state"))
	}
	if got := q.Get("iss"); got != s.URL {
		t.Fatalf("authorize: iss %q, want %q", got, s.URL)
	}
	return q.Get("code")
}

type authStyle int

const (
	authPost authStyle = iota
	authBasic
	authBoth
	authNone
)

// tokenRequest posts form to the token endpoint with client credentials and
// returns the status and the decoded JSON body.
func tokenRequest(t *testing.T, s *pipatest.Server, style authStyle, id, secret string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	form = cloneValues(form)
	switch style {
	case authPost:
		form.Set("client_id", id)
		form.Set("client_secret", secret)
	case authBoth:
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if style == authBasic || style == authBoth {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return doJSON(t, s, req)
}

func doJSON(t *testing.T, s *pipatest.Server, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, body %s", ct, b)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return resp, m
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func codeForm(code, redirect string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
}

// exchange redeems a code with the default client and wants success.
func exchange(t *testing.T, s *pipatest.Server, id, secret, code string) map[string]any {
	t.Helper()
	resp, m := tokenRequest(t, s, authPost, id, secret, codeForm(code, testRedirect))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: status %d: %v", resp.StatusCode, m)
	}
	return m
}

func refresh(t *testing.T, s *pipatest.Server, id, secret, rt string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	for k, v := range extra {
		form[k] = v
	}
	resp, m := tokenRequest(t, s, authBasic, id, secret, form)
	return resp.StatusCode, m
}

func wantOAuthError(t *testing.T, status int, m map[string]any, wantStatus int, wantErr string) {
	t.Helper()
	if status != wantStatus || m["error"] != wantErr {
		t.Fatalf("got status %d %v, want %d error=%s", status, m, wantStatus, wantErr)
	}
	if _, ok := m["access_token"]; ok {
		t.Fatalf("error response has an access token: %v", m)
	}
}

func verifier(t *testing.T, s *pipatest.Server, clientID string) *oidc.IDTokenVerifier {
	t.Helper()
	p, err := oidc.NewProvider(oidc.ClientContext(context.Background(), s.Client()), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return p.Verifier(&oidc.Config{ClientID: clientID})
}

func verify(t *testing.T, v *oidc.IDTokenVerifier, s *pipatest.Server, raw string) (*oidc.IDToken, error) {
	t.Helper()
	return v.Verify(oidc.ClientContext(t.Context(), s.Client()), raw)
}

// rawClaims returns the claims of an ID token without verifying it.
func rawClaims(t *testing.T, raw string) (map[string]any, jose.Header) {
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

func str(v any) string {
	s, _ := v.(string)
	return s
}

func pkce(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

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
				"token_endpoint_auth_methods_supported": []any{"client_secret_post", "client_secret_basic"},
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

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAuthorizeRejections(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "strict", Secret: "x", RedirectURLs: []string{"https://strict.example/cb"}})

	type tc struct {
		name    string
		edit    func(v url.Values)
		page    bool   // 400 page, no redirect
		wantErr string // error code of the redirect
		noState bool
	}
	tests := []tc{
		{name: "unknown client", edit: func(v url.Values) { v.Set("client_id", "nobody") }, page: true},
		{name: "missing client_id", edit: func(v url.Values) { v.Del("client_id") }, page: true},
		{name: "repeated client_id", edit: func(v url.Values) { v.Add("client_id", pipatest.DefaultClientID) }, page: true},
		{name: "unregistered redirect_uri", edit: func(v url.Values) { v.Set("client_id", "strict") }, page: true},
		{name: "registered redirect_uri plus a query", edit: func(v url.Values) {
			v.Set("client_id", "strict")
			v.Set("redirect_uri", "https://strict.example/cb?x=1")
		}, page: true},
		{name: "missing redirect_uri", edit: func(v url.Values) { v.Del("redirect_uri") }, page: true},
		{name: "repeated redirect_uri", edit: func(v url.Values) { v.Add("redirect_uri", testRedirect) }, page: true},
		{name: "javascript redirect_uri", edit: func(v url.Values) { v.Set("redirect_uri", "javascript:alert(1)") }, page: true},
		{name: "relative redirect_uri", edit: func(v url.Values) { v.Set("redirect_uri", "/callback") }, page: true},
		{name: "redirect_uri with fragment", edit: func(v url.Values) { v.Set("redirect_uri", testRedirect+"#frag") }, page: true},
		{name: "missing nonce with openid", edit: func(v url.Values) { v.Del("nonce") }, wantErr: "invalid_request"},
		{name: "response_type token", edit: func(v url.Values) { v.Set("response_type", "token") }, wantErr: "unsupported_response_type"},
		{name: "response_type code id_token", edit: func(v url.Values) { v.Set("response_type", "code id_token") }, wantErr: "unsupported_response_type"},
		{name: "missing response_type", edit: func(v url.Values) { v.Del("response_type") }, wantErr: "invalid_request"},
		{name: "unknown scope only", edit: func(v url.Values) { v.Set("scope", "profile") }, wantErr: "invalid_scope"},
		{name: "missing scope", edit: func(v url.Values) { v.Del("scope") }, wantErr: "invalid_scope"},
		{name: "PKCE plain", edit: func(v url.Values) {
			v.Set("code_challenge", pkce(strings.Repeat("v", 43)))
			v.Set("code_challenge_method", "plain")
		}, wantErr: "invalid_request"},
		{name: "PKCE without method", edit: func(v url.Values) { v.Set("code_challenge", pkce(strings.Repeat("v", 43))) }, wantErr: "invalid_request"},
		{name: "PKCE method without challenge", edit: func(v url.Values) { v.Set("code_challenge_method", "S256") }, wantErr: "invalid_request"},
		{name: "PKCE malformed challenge", edit: func(v url.Values) {
			v.Set("code_challenge", "short")
			v.Set("code_challenge_method", "S256")
		}, wantErr: "invalid_request"},
		{name: "repeated scope", edit: func(v url.Values) { v.Add("scope", "openid") }, wantErr: "invalid_request"},
		{name: "repeated nonce", edit: func(v url.Values) { v.Add("nonce", "other") }, wantErr: "invalid_request"},
		{name: "repeated state", edit: func(v url.Values) { v.Add("state", "other") }, wantErr: "invalid_request", noState: true},
		{name: "request object", edit: func(v url.Values) { v.Set("request", "eyJ.x.y") }, wantErr: "request_not_supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := authParams(pipatest.DefaultClientID)
			tc.edit(v)
			status, loc, body := authorize(t, s, v)
			if tc.page {
				if status != http.StatusBadRequest || loc != nil {
					t.Fatalf("status %d, location %v; want 400 page", status, loc)
				}
				if !strings.Contains(body, "<title>PiPA — Bad request</title>") {
					t.Errorf("page: %s", body)
				}
				return
			}
			if status != http.StatusFound || loc == nil {
				t.Fatalf("status %d, location %v, body %s", status, loc, body)
			}
			q := loc.Query()
			if q.Get("error") != tc.wantErr || q.Has("code") || q.Get("error_description") == "" || q.Get("iss") != s.URL {
				t.Errorf("redirect %s, want error=%s", loc, tc.wantErr)
			}
			if wantState := map[bool]string{false: testState, true: ""}[tc.noState]; q.Get("state") != wantState {
				t.Errorf("state %q, want %q", q.Get("state"), wantState)
			}
		})
	}

	t.Run("method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, s.URL+"/authorize", nil)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("PUT: status %d", resp.StatusCode)
		}
	})
	t.Run("malformed query", func(t *testing.T) {
		resp, _ := get(t, s, s.URL+"/authorize?client_id=%zz")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestAuthorizeRedirect(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "strict", Secret: "x", RedirectURLs: []string{"https://strict.example/cb?tenant=a+b&x=1"}})

	v := authParams("strict")
	v.Set("redirect_uri", "https://strict.example/cb?tenant=a+b&x=1")
	v.Set("scope", "email") // plain OAuth: no nonce needed
	v.Del("nonce")
	status, loc, _ := authorize(t, s, v)
	if status != http.StatusFound || loc == nil {
		t.Fatalf("status %d", status)
	}
	if !strings.HasPrefix(loc.String(), "https://strict.example/cb?tenant=a+b&x=1&") {
		t.Errorf("redirect %s does not keep the registered query", loc)
	}
	q := loc.Query()
	if q.Get("tenant") != "a b" || q.Get("x") != "1" || q.Get("code") == "" || q.Get("state") != testState || q.Get("iss") != s.URL {
		t.Errorf("redirect %s", loc)
	}

	// No state: none in the redirect.
	v.Del("state")
	_, loc, _ = authorize(t, s, v)
	if loc.Query().Has("state") {
		t.Errorf("redirect %s has a state", loc)
	}

	// AuthorizeError.
	s.SetBehavior(pipatest.Behavior{AuthorizeError: "access_denied"})
	v.Set("state", testState)
	_, loc, _ = authorize(t, s, v)
	q = loc.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != testState || q.Has("code") || q.Get("iss") != s.URL || q.Get("error_description") == "" {
		t.Errorf("AuthorizeError redirect %s", loc)
	}
}

func TestCodeFlow(t *testing.T) {
	tests := []struct {
		name  string
		tls   bool
		style authStyle
	}{
		{"post", false, authPost},
		{"basic", false, authBasic},
		{"tls post", true, authPost},
		{"tls basic", true, authBasic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s *pipatest.Server
			if tc.tls {
				s = pipatest.NewTLSServer()
			} else {
				s = pipatest.NewServer()
			}
			defer s.Close()
			// A client whose credentials need form-encoding in HTTP Basic.
			const id, secret = "app: one/two", "s3cr3t:+&%=ü"
			s.RegisterClient(pipatest.Client{ID: id, Secret: secret, RedirectURLs: []string{testRedirect}})

			c := code(t, s, authParams(id))
			resp, m := tokenRequest(t, s, tc.style, id, secret, codeForm(c, testRedirect))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %v", resp.StatusCode, m)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			wantAuth := map[authStyle]string{authPost: "client_secret_post", authBasic: "client_secret_basic"}[tc.style]
			if tr, ok := s.LastTokenRequest(); !ok || tr != (pipatest.TokenRequest{ClientAuth: wantAuth, GrantType: "authorization_code", RedirectURI: testRedirect}) {
				t.Errorf("LastTokenRequest = %+v, %v", tr, ok)
			}
			at := str(m["access_token"])
			if at == "" || str(m["refresh_token"]) == "" || m["token_type"] != "Bearer" || m["expires_in"] != json.Number("3600") || m["scope"] != "openid email" {
				t.Errorf("token response %v", m)
			}
			sub := s.Subject(id, "alice")
			if m["user_id"] != sub {
				t.Errorf("user_id %v, want %s", m["user_id"], sub)
			}
			idt, err := verify(t, verifier(t, s, id), s, str(m["id_token"]))
			if err != nil {
				t.Fatal(err)
			}
			if idt.Subject != sub || idt.Nonce != testNonce || idt.Issuer != s.URL {
				t.Errorf("ID token sub %q nonce %q iss %q", idt.Subject, idt.Nonce, idt.Issuer)
			}
			if err := idt.VerifyAccessToken(at); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var claims struct {
				AZP           string `json:"azp"`
				Email         string `json:"email"`
				EmailVerified *bool  `json:"email_verified"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.AZP != id || claims.Email != "alice@example.com" || claims.EmailVerified == nil || !*claims.EmailVerified {
				t.Errorf("claims %+v", claims)
			}
			if time.Until(idt.Expiry) < 59*time.Minute || time.Since(idt.IssuedAt) > time.Minute {
				t.Errorf("exp %v iat %v", idt.Expiry, idt.IssuedAt)
			}
		})
	}
}

func TestEmailClaim(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	v := verifier(t, s, pipatest.DefaultClientID)
	tests := []struct {
		user      string
		scope     string
		wantEmail string
	}{
		{"alice", "openid email", "alice@example.com"},
		{"alice", "openid", ""},
		{"bob", "openid email", ""}, // does not share
		{"bob", "openid", ""},
		{"carol", "openid email", "carol@example.net"}, // unverified
	}
	s.AddUser(pipatest.User{Name: "carol", Email: "carol@example.net", ShareEmail: true})
	users := map[string]pipatest.User{}
	for _, u := range s.Users() {
		users[u.Name] = u
	}
	if u := users["bob"]; u.Email != "bob@example.org" || !u.EmailVerified || u.ShareEmail {
		t.Errorf("default bob = %+v", u)
	}
	for _, tc := range tests {
		t.Run(tc.user+" "+tc.scope, func(t *testing.T) {
			s.SetUser(users[tc.user])
			p := authParams(pipatest.DefaultClientID)
			p.Set("scope", tc.scope)
			m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, code(t, s, p))
			idt, err := verify(t, v, s, str(m["id_token"]))
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if str(claims["email"]) != tc.wantEmail {
				t.Errorf("email %v, want %q", claims["email"], tc.wantEmail)
			}
			_, hasVerified := claims["email_verified"]
			if hasVerified != (tc.wantEmail != "") {
				t.Errorf("email_verified present: %v", hasVerified)
			}
			if tc.wantEmail != "" && claims["email_verified"] != users[tc.user].EmailVerified {
				t.Errorf("email_verified %v", claims["email_verified"])
			}
			if idt.Subject != s.Subject(pipatest.DefaultClientID, tc.user) || m["user_id"] != idt.Subject {
				t.Errorf("sub %q user_id %v", idt.Subject, m["user_id"])
			}
		})
	}

	t.Run("no openid scope", func(t *testing.T) {
		s.SetUser(users["alice"])
		p := authParams(pipatest.DefaultClientID)
		p.Set("scope", "email")
		m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, code(t, s, p))
		if _, ok := m["id_token"]; ok {
			t.Errorf("id_token without openid scope")
		}
		if m["user_id"] != s.Subject(pipatest.DefaultClientID, "alice") || m["scope"] != "email" {
			t.Errorf("response %v", m)
		}
	})
}

func TestPairwiseSubjects(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "other", Secret: "other-secret"})
	s2 := pipatest.NewUnstartedServer()
	defer s2.Close()

	a1 := s.Subject(pipatest.DefaultClientID, "alice")
	switch {
	case a1 != s.Subject(pipatest.DefaultClientID, "alice"):
		t.Error("subject not stable")
	case a1 == s.Subject("other", "alice"):
		t.Error("same subject for two clients")
	case a1 == s.Subject(pipatest.DefaultClientID, "bob"):
		t.Error("same subject for two users")
	case a1 == s2.Subject(pipatest.DefaultClientID, "alice"):
		t.Error("same subject on two servers")
	case len(a1) < 16:
		t.Errorf("short subject %q", a1)
	}

	subs := map[string]string{}
	for _, c := range []pipatest.Client{{ID: pipatest.DefaultClientID, Secret: pipatest.DefaultClientSecret}, {ID: "other", Secret: "other-secret"}} {
		m := exchange(t, s, c.ID, c.Secret, code(t, s, authParams(c.ID)))
		idt, err := verify(t, verifier(t, s, c.ID), s, str(m["id_token"]))
		if err != nil {
			t.Fatal(err)
		}
		if idt.Subject != s.Subject(c.ID, "alice") || m["user_id"] != idt.Subject {
			t.Errorf("%s: sub %q user_id %v", c.ID, idt.Subject, m["user_id"])
		}
		subs[c.ID] = idt.Subject
	}
	if subs[pipatest.DefaultClientID] == subs["other"] {
		t.Error("pairwise subjects are equal")
	}
}

func TestTokenErrors(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "other", Secret: "other-secret"})
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret

	tests := []struct {
		name       string
		style      authStyle
		id, secret string
		form       func(code string) url.Values
		wantStatus int
		wantErr    string
	}{
		{"wrong secret post", authPost, id, "wrong", nil, 401, "invalid_client"},
		{"wrong secret basic", authBasic, id, "wrong", nil, 401, "invalid_client"},
		{"unknown client", authPost, "nobody", secret, nil, 401, "invalid_client"},
		{"no client auth", authNone, id, secret, func(c string) url.Values {
			f := codeForm(c, testRedirect)
			f.Set("client_id", id)
			return f
		}, 401, "invalid_client"},
		{"both auth methods", authBoth, id, secret, nil, 400, "invalid_request"},
		{"other client's code", authPost, "other", "other-secret", nil, 400, "invalid_grant"},
		{"unknown code", authPost, id, secret, func(string) url.Values { return codeForm("nope", testRedirect) }, 400, "invalid_grant"},
		{"missing code", authPost, id, secret, func(string) url.Values { return codeForm("", testRedirect) }, 400, "invalid_request"},
		{"redirect_uri mismatch", authPost, id, secret, func(c string) url.Values { return codeForm(c, testRedirect+"/x") }, 400, "invalid_grant"},
		{"redirect_uri missing", authPost, id, secret, func(c string) url.Values {
			f := codeForm(c, "")
			f.Del("redirect_uri")
			return f
		}, 400, "invalid_grant"},
		{"unsupported grant", authPost, id, secret, func(c string) url.Values {
			f := codeForm(c, testRedirect)
			f.Set("grant_type", "password")
			return f
		}, 400, "unsupported_grant_type"},
		{"missing grant_type", authPost, id, secret, func(c string) url.Values {
			f := codeForm(c, testRedirect)
			f.Del("grant_type")
			return f
		}, 400, "invalid_request"},
		{"repeated parameter", authPost, id, secret, func(c string) url.Values {
			f := codeForm(c, testRedirect)
			f.Add("code", c)
			return f
		}, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := code(t, s, authParams(id))
			form := codeForm(c, testRedirect)
			if tc.form != nil {
				form = tc.form(c)
			}
			resp, m := tokenRequest(t, s, tc.style, tc.id, tc.secret, form)
			wantOAuthError(t, resp.StatusCode, m, tc.wantStatus, tc.wantErr)
			if tc.wantStatus == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("JSON body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/token", strings.NewReader(`{"grant_type":"authorization_code"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, m := doJSON(t, s, req)
		wantOAuthError(t, resp.StatusCode, m, 400, "invalid_request")
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/token?grant_type=authorization_code", nil)
		resp, m := doJSON(t, s, req)
		wantOAuthError(t, resp.StatusCode, m, 405, "invalid_request")
	})
	t.Run("expired code", func(t *testing.T) {
		c := code(t, s, authParams(id))
		pipatest.SetNow(s, func() time.Time { return time.Now().Add(61 * time.Second) })
		defer pipatest.SetNow(s, time.Now)
		resp, m := tokenRequest(t, s, authPost, id, secret, codeForm(c, testRedirect))
		wantOAuthError(t, resp.StatusCode, m, 400, "invalid_grant")
	})
	t.Run("TokenRequests counts all", func(t *testing.T) {
		before := s.TokenRequests()
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/token", nil)
		doJSON(t, s, req)
		tokenRequest(t, s, authPost, id, "wrong", codeForm("x", testRedirect))
		if got := s.TokenRequests(); got != before+2 {
			t.Errorf("TokenRequests %d, want %d", got, before+2)
		}
	})
}

func TestCodeSingleUse(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	c := code(t, s, authParams(id))
	m := exchange(t, s, id, secret, c)
	resp, m2 := tokenRequest(t, s, authBasic, id, secret, codeForm(c, testRedirect))
	wantOAuthError(t, resp.StatusCode, m2, 400, "invalid_grant")

	// The tokens issued from the code are revoked.
	status, m3 := refresh(t, s, id, secret, str(m["refresh_token"]), nil)
	wantOAuthError(t, status, m3, 400, "invalid_grant")
	if status := userinfoStatus(t, s, str(m["access_token"])); status != http.StatusUnauthorized {
		t.Errorf("userinfo with a revoked access token: %d", status)
	}

	// A failed attempt uses the code up too.
	c = code(t, s, authParams(id))
	tokenRequest(t, s, authPost, id, secret, codeForm(c, testRedirect+"/wrong"))
	resp, m4 := tokenRequest(t, s, authPost, id, secret, codeForm(c, testRedirect))
	wantOAuthError(t, resp.StatusCode, m4, 400, "invalid_grant")
}

func TestPKCE(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	goodVerifier := oauth2.GenerateVerifier()

	tests := []struct {
		name      string
		challenge string // "" for none
		verifier  *string
		wantErr   string
	}{
		{"match", pkce(goodVerifier), &goodVerifier, ""},
		{"missing verifier", pkce(goodVerifier), nil, "invalid_grant"},
		{"wrong verifier", pkce(goodVerifier), ptr(oauth2.GenerateVerifier()), "invalid_grant"},
		{"short verifier", pkce("abc"), ptr("abc"), "invalid_grant"},
		{"verifier without challenge", "", &goodVerifier, "invalid_grant"},
		{"neither", "", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := authParams(id)
			if tc.challenge != "" {
				p.Set("code_challenge", tc.challenge)
				p.Set("code_challenge_method", "S256")
			}
			form := codeForm(code(t, s, p), testRedirect)
			if tc.verifier != nil {
				form.Set("code_verifier", *tc.verifier)
			}
			resp, m := tokenRequest(t, s, authPost, id, secret, form)
			if tr, _ := s.LastTokenRequest(); tr.HasVerifier != (tc.verifier != nil) {
				t.Errorf("LastTokenRequest().HasVerifier = %v", tr.HasVerifier)
			}
			if tc.wantErr != "" {
				wantOAuthError(t, resp.StatusCode, m, 400, tc.wantErr)
			} else if resp.StatusCode != 200 {
				t.Errorf("status %d: %v", resp.StatusCode, m)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestOAuth2Library runs the flow with golang.org/x/oauth2 and go-oidc, as a
// relying party would.
func TestOAuth2Library(t *testing.T) {
	s := pipatest.NewTLSServer()
	defer s.Close()
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInParams, oauth2.AuthStyleInHeader} {
		ctx := oidc.ClientContext(t.Context(), s.Client())
		p, err := oidc.NewProvider(ctx, s.URL)
		if err != nil {
			t.Fatal(err)
		}
		ep := p.Endpoint()
		ep.AuthStyle = style
		conf := &oauth2.Config{
			ClientID: pipatest.DefaultClientID, ClientSecret: pipatest.DefaultClientSecret,
			Endpoint: ep, RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID, "email"},
		}
		ver := oauth2.GenerateVerifier()
		resp, _ := get(t, s, conf.AuthCodeURL(testState, oidc.Nonce(testNonce), oauth2.S256ChallengeOption(ver)))
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(ver))
		if err != nil {
			t.Fatal(err)
		}
		want := map[oauth2.AuthStyle]string{oauth2.AuthStyleInParams: "client_secret_post", oauth2.AuthStyleInHeader: "client_secret_basic"}[style]
		if tr, _ := s.LastTokenRequest(); tr.ClientAuth != want || !tr.HasVerifier {
			t.Errorf("LastTokenRequest = %+v", tr)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := p.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if idt.Nonce != testNonce || idt.VerifyAccessToken(tok.AccessToken) != nil || tok.Extra("user_id") != idt.Subject {
			t.Errorf("nonce %q user_id %v sub %q", idt.Nonce, tok.Extra("user_id"), idt.Subject)
		}
		info, err := p.UserInfo(ctx, conf.TokenSource(ctx, tok))
		if err != nil {
			t.Fatal(err)
		}
		if info.Subject != idt.Subject || info.Email != "alice@example.com" || !info.EmailVerified {
			t.Errorf("userinfo %+v", info)
		}
		// Refresh through the library.
		tok.Expiry = time.Now().Add(-time.Minute)
		tok2, err := conf.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
			t.Error("refresh did not rotate tokens")
		}
	}
}

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

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	idRE     = regexp.MustCompile(`\bid="([^"]*)"`)
)

// consentForm loads the interactive page and returns the hidden fields of
// its form.
func consentForm(t *testing.T, s *pipatest.Server, params url.Values) (url.Values, string) {
	t.Helper()
	resp, body := get(t, s, s.URL+"/authorize?"+params.Encode())
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if form.Get("csrf") == "" {
		t.Fatalf("no CSRF token in %s", body)
	}
	return form, body
}

func TestInteractive(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.SetInteractive(true)
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	v := verifier(t, s, id)

	t.Run("page", func(t *testing.T) {
		_, body := consentForm(t, s, authParams(id))
		var ids []string
		for _, m := range idRE.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		for _, want := range []string{"user-alice", "user-bob", "email", "share-email", "approve", "deny"} {
			if !slices.Contains(ids, want) {
				t.Errorf("no element with id %q (ids %v)", want, ids)
			}
		}
		for _, want := range []string{
			"<title>PiPA — sign in</title>",
			`<label for="user-alice">`, `<label for="email">`, `<label for="share-email">`,
			`id="user-alice" name="user" value="alice" checked>`,
			`id="share-email" name="share_email" value="on" checked>`,
			"Share my email address with <strong>" + id + "</strong>",
			`<form method="post" action="authorize">`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})

	t.Run("hostile client_id and state are escaped", func(t *testing.T) {
		const evilID = `<script>alert("id")</script>`
		const evilState = `"><script>alert('state')</script>`
		s.RegisterClient(pipatest.Client{ID: evilID, Secret: "x"})
		p := authParams(evilID)
		p.Set("state", evilState)
		form, body := consentForm(t, s, p)
		if strings.Contains(body, "<script") {
			t.Fatalf("unescaped markup in page:\n%s", body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;") {
			t.Errorf("escaped client id not shown:\n%s", body)
		}
		if form.Get("client_id") != evilID || form.Get("state") != evilState {
			t.Errorf("hidden fields %v", form)
		}
		// And the values survive the round trip.
		form.Set("user", "alice")
		form.Set("action", "approve")
		resp, _ := postForm(t, s, s.URL+"/authorize", form)
		loc, err := resp.Location()
		if err != nil || loc.Query().Get("state") != evilState || loc.Query().Get("code") == "" {
			t.Errorf("redirect %v, %v", loc, err)
		}
	})

	tests := []struct {
		name      string
		edit      func(form url.Values)
		wantErr   string // error in the redirect
		wantUser  string
		wantEmail string
	}{
		{"approve alice", func(f url.Values) { f.Set("user", "alice"); f.Set("share_email", "on") }, "", "alice", "alice@example.com"},
		{"approve alice without sharing", func(f url.Values) { f.Set("user", "alice") }, "", "alice", ""},
		{"approve bob sharing", func(f url.Values) { f.Set("user", "bob"); f.Set("share_email", "on") }, "", "bob", "bob@example.org"},
		{"typed email", func(f url.Values) {
			f.Set("user", "bob")
			f.Set("email", "carol@example.net")
			f.Set("share_email", "on")
		}, "", "carol@example.net", "carol@example.net"},
		{"deny", func(f url.Values) { f.Set("user", "alice"); f.Set("action", "deny") }, "access_denied", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form, _ := consentForm(t, s, authParams(id))
			form.Set("action", "approve")
			tc.edit(form)
			resp, body := postForm(t, s, s.URL+"/authorize", form)
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			q := loc.Query()
			if q.Get("state") != testState || q.Get("iss") != s.URL || !strings.HasPrefix(loc.String(), testRedirect+"?") {
				t.Errorf("redirect %s", loc)
			}
			if tc.wantErr != "" {
				if q.Get("error") != tc.wantErr || q.Has("code") {
					t.Errorf("redirect %s, want error %s", loc, tc.wantErr)
				}
			} else {
				m := exchange(t, s, id, secret, q.Get("code"))
				idt, err := verify(t, v, s, str(m["id_token"]))
				if err != nil {
					t.Fatal(err)
				}
				var c struct {
					Email         string `json:"email"`
					EmailVerified bool   `json:"email_verified"`
				}
				idt.Claims(&c)
				if idt.Subject != s.Subject(id, tc.wantUser) || c.Email != tc.wantEmail || (c.Email != "" && !c.EmailVerified) {
					t.Errorf("sub %q (want that of %s), email %q verified %v, want %q", idt.Subject, tc.wantUser, c.Email, c.EmailVerified, tc.wantEmail)
				}
			}
			// The form is single use.
			resp, _ = postForm(t, s, s.URL+"/authorize", form)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Errorf("reused form: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}

	refusals := []struct {
		name       string
		edit       func(form url.Values)
		wantStatus int
	}{
		{"wrong CSRF token", func(f url.Values) { f.Set("csrf", "WRONG") }, http.StatusForbidden},
		{"no CSRF token", func(f url.Values) { f.Del("csrf") }, http.StatusForbidden},
		{"tampered redirect_uri", func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") }, http.StatusBadRequest},
		{"tampered scope", func(f url.Values) { f.Set("scope", "openid") }, http.StatusBadRequest},
		{"dropped nonce", func(f url.Values) { f.Del("nonce") }, http.StatusBadRequest},
		{"repeated field", func(f url.Values) { f.Add("user", "bob") }, http.StatusBadRequest},
		{"unknown user", func(f url.Values) { f.Set("user", "mallory") }, http.StatusBadRequest},
		{"bad email", func(f url.Values) { f.Set("email", "Carol <carol@example.net>") }, http.StatusBadRequest},
		{"no action", func(f url.Values) { f.Del("action") }, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			form, _ := consentForm(t, s, authParams(id))
			form.Set("user", "alice")
			form.Set("action", "approve")
			tc.edit(form)
			resp, body := postForm(t, s, s.URL+"/authorize", form)
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q, want %d: %s", resp.StatusCode, resp.Header.Get("Location"), tc.wantStatus, body)
			}
		})
	}

	t.Run("expired form", func(t *testing.T) {
		form, _ := consentForm(t, s, authParams(id))
		form.Set("user", "alice")
		form.Set("action", "approve")
		pipatest.SetNow(s, func() time.Time { return time.Now().Add(time.Hour) })
		defer pipatest.SetNow(s, time.Now)
		resp, _ := postForm(t, s, s.URL+"/authorize", form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d", resp.StatusCode)
		}
	})

	t.Run("invalid request is not shown", func(t *testing.T) {
		p := authParams(id)
		p.Del("nonce")
		status, loc, _ := authorize(t, s, p)
		if status != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("status %d, location %v", status, loc)
		}
	})
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
