package pipatest_test

// Tests of the token endpoint and the ID tokens it issues (helpers in
// helpers_test.go): the code flow, email and pairwise subject claims, token
// errors, single-use codes, PKCE, and a relying party built on
// golang.org/x/oauth2 and go-oidc.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/pipatest"
)

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
