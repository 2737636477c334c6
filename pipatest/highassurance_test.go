package pipatest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/pipaauth/pipaauth/pipatest"
)

const keyClient = "key-client"

// keyServer is a Server with keyClient registered by its public key.
func keyServer(t *testing.T) (*pipatest.Server, *ecdsa.PrivateKey) {
	t.Helper()
	s := pipatest.NewServer()
	t.Cleanup(s.Close)
	k := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	s.RegisterClient(pipatest.Client{ID: keyClient, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1"}}}})
	return s, k
}

// assertion signs a client assertion with k; edit changes the claims.
func assertion(t *testing.T, s *pipatest.Server, k *ecdsa.PrivateKey, edit func(*jwt.Claims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.Claims{Issuer: keyClient, Subject: keyClient, Audience: jwt.Audience{s.URL}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	if edit != nil {
		edit(&c)
	}
	sig := must(jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1")))
	return must(jwt.Signed(sig).Claims(c).Serialize())
}

// withAssertion returns form with client_assertion a.
func withAssertion(form url.Values, a string) url.Values {
	f := cloneValues(form)
	f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	f.Set("client_assertion", a)
	return f
}

// proof signs a DPoP proof with k for method and u; edit changes the
// claims.
func proof(t *testing.T, k *ecdsa.PrivateKey, method, u, accessToken string, edit func(map[string]any)) string {
	t.Helper()
	c := map[string]any{"jti": rand.Text(), "htm": method, "htu": u, "iat": time.Now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if edit != nil {
		edit(c)
	}
	sig := must(jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")))
	return must(jwt.Signed(sig).Claims(c).Serialize())
}

func thumbprint(k *ecdsa.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(must((&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)))
}

// post sends form to path with an optional DPoP header and returns the
// status, the JSON body and the headers.
func post(t *testing.T, s *pipatest.Server, path string, form url.Values, dpop string) (int, map[string]any, http.Header) {
	t.Helper()
	req := must(http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode())))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if dpop != "" {
		req.Header.Set("DPoP", dpop)
	}
	resp, m := doJSON(t, s, req)
	return resp.StatusCode, m, resp.Header
}

func TestPrivateKeyJWTRefusals(t *testing.T) {
	s, k := keyServer(t)
	other := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	reused := assertion(t, s, k, nil)
	if st, m, _ := post(t, s, "/par", withAssertion(authParams(keyClient), reused), ""); st != http.StatusCreated {
		t.Fatalf("a good assertion: %d %v", st, m)
	}
	for _, tc := range []struct {
		name string
		a    string
	}{
		{"wrong aud", assertion(t, s, k, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://elsewhere.example"} })},
		{"reused jti", reused},
		{"expired", assertion(t, s, k, func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(time.Now().Add(-2*time.Minute)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
		})},
		{"no exp", assertion(t, s, k, func(c *jwt.Claims) { c.Expiry = nil })},
		{"too long", assertion(t, s, k, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) })},
		{"sub not client", assertion(t, s, k, func(c *jwt.Claims) { c.Subject = "someone" })},
		{"no jti", assertion(t, s, k, func(c *jwt.Claims) { c.ID = "" })},
		{"wrong key", assertion(t, s, other, nil)},
		{"garbage", "not.a.jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m, _ := post(t, s, "/par", withAssertion(authParams(keyClient), tc.a), "")
			wantOAuthError(t, st, m, http.StatusUnauthorized, "invalid_client")
			st, m, _ = post(t, s, "/token", withAssertion(codeForm("any", testRedirect), tc.a), "")
			wantOAuthError(t, st, m, http.StatusUnauthorized, "invalid_client")
		})
	}
	t.Run("secret and assertion", func(t *testing.T) {
		f := withAssertion(authParams(keyClient), assertion(t, s, k, nil))
		f.Set("client_secret", "x")
		st, m, _ := post(t, s, "/par", f, "")
		wantOAuthError(t, st, m, http.StatusBadRequest, "invalid_request")
	})
	t.Run("secret for a key-only provider", func(t *testing.T) {
		s.SetProfile(pipatest.Profile{PrivateKeyJWTOnly: true})
		defer s.SetProfile(pipatest.Profile{})
		f := authParams(pipatest.DefaultClientID)
		f.Set("client_secret", pipatest.DefaultClientSecret)
		st, m, _ := post(t, s, "/par", f, "")
		wantOAuthError(t, st, m, http.StatusUnauthorized, "invalid_client")
	})
}

func TestPushedAuthorization(t *testing.T) {
	s, k := keyServer(t)
	s.SetProfile(pipatest.Profile{RequirePushedAuthorization: true})
	// A plain authorization request is refused (back to the client).
	p := authParams(keyClient)
	_, loc, _ := authorize(t, s, p)
	if loc == nil || loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("plain request with RequirePushedAuthorization: %v, want error=invalid_request", loc)
	}
	st, m, _ := post(t, s, "/par", withAssertion(p, assertion(t, s, k, nil)), "")
	if st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, m)
	}
	uri := str(m["request_uri"])
	q := url.Values{"client_id": {keyClient}, "request_uri": {uri}}
	if st, loc, body := authorize(t, s, q); st != http.StatusFound || loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != testState {
		t.Fatalf("authorize with request_uri: %d %v %q, want a code and the pushed state", st, loc, body)
	}
	// Used once.
	if st, _, body := authorize(t, s, q); st != http.StatusBadRequest || !strings.Contains(body, "already used") {
		t.Errorf("request_uri again: %d %q, want 400", st, body)
	}
	// Another client cannot use it.
	st, m, _ = post(t, s, "/par", withAssertion(p, assertion(t, s, k, nil)), "")
	if st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, m)
	}
	if st, _, _ := authorize(t, s, url.Values{"client_id": {pipatest.DefaultClientID}, "request_uri": {str(m["request_uri"])}}); st != http.StatusBadRequest {
		t.Errorf("request_uri of another client: %d, want 400", st)
	}
	// A push with a bad parameter is refused at once.
	bad := cloneValues(p)
	bad.Set("response_type", "token")
	st, m, _ = post(t, s, "/par", withAssertion(bad, assertion(t, s, k, nil)), "")
	wantOAuthError(t, st, m, http.StatusBadRequest, "unsupported_response_type")
	if n := s.PushedRequests(); n != 2 {
		t.Errorf("PushedRequests = %d, want 2", n)
	}
}

// dpopCode returns a code bound by dpop_jkt to k's thumbprint.
func dpopCode(t *testing.T, s *pipatest.Server, k *ecdsa.PrivateKey) string {
	t.Helper()
	p := authParams(pipatest.DefaultClientID)
	p.Set("dpop_jkt", thumbprint(k))
	return code(t, s, p)
}

func secretForm(form url.Values) url.Values {
	f := cloneValues(form)
	f.Set("client_id", pipatest.DefaultClientID)
	f.Set("client_secret", pipatest.DefaultClientSecret)
	return f
}

func TestDPoPTokenEndpoint(t *testing.T) {
	s := pipatest.NewServer()
	t.Cleanup(s.Close)
	k := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	other := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tokenURL := s.URL + "/token"
	reused := proof(t, k, "POST", tokenURL, "", nil)
	st, m, _ := post(t, s, "/token", secretForm(codeForm(dpopCode(t, s, k), testRedirect)), reused)
	if st != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("a good proof: %d %v, want token_type DPoP", st, m)
	}
	rt := str(m["refresh_token"])
	for _, tc := range []struct {
		name    string
		proof   string
		wantErr string
	}{
		{"other htm", proof(t, k, "GET", tokenURL, "", nil), "invalid_dpop_proof"},
		{"other htu", proof(t, k, "POST", s.URL+"/par", "", nil), "invalid_dpop_proof"},
		{"reused jti", reused, "invalid_dpop_proof"},
		{"old iat", proof(t, k, "POST", tokenURL, "", func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }), "invalid_dpop_proof"},
		{"wrong key for dpop_jkt", proof(t, other, "POST", tokenURL, "", nil), "invalid_grant"},
		{"not a JWS", "x.y.z", "invalid_dpop_proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m, _ := post(t, s, "/token", secretForm(codeForm(dpopCode(t, s, k), testRedirect)), tc.proof)
			wantOAuthError(t, st, m, http.StatusBadRequest, tc.wantErr)
		})
	}
	t.Run("refresh with another key", func(t *testing.T) {
		f := secretForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		st, m, _ := post(t, s, "/token", f, proof(t, other, "POST", tokenURL, "", nil))
		wantOAuthError(t, st, m, http.StatusBadRequest, "invalid_grant")
		st, m, _ = post(t, s, "/token", f, "")
		wantOAuthError(t, st, m, http.StatusBadRequest, "invalid_grant")
		st, m, _ = post(t, s, "/token", f, proof(t, k, "POST", tokenURL, "", nil))
		if st != http.StatusOK || m["token_type"] != "DPoP" {
			t.Errorf("refresh with the key: %d %v", st, m)
		}
	})
	t.Run("nonce", func(t *testing.T) {
		s.SetProfile(pipatest.Profile{DPoPNonce: true, RequireDPoP: true})
		defer s.SetProfile(pipatest.Profile{})
		c := dpopCode(t, s, k)
		st, m, h := post(t, s, "/token", secretForm(codeForm(c, testRedirect)), proof(t, k, "POST", tokenURL, "", nil))
		wantOAuthError(t, st, m, http.StatusBadRequest, "use_dpop_nonce")
		nonce := h.Get("DPoP-Nonce")
		if nonce == "" || nonce != s.DPoPNonce() {
			t.Fatalf("DPoP-Nonce %q, want the server's", nonce)
		}
		st, m, _ = post(t, s, "/token", secretForm(codeForm(c, testRedirect)), proof(t, k, "POST", tokenURL, "", func(c map[string]any) { c["nonce"] = nonce }))
		if st != http.StatusOK {
			t.Errorf("with the nonce: %d %v", st, m)
		}
		st, m, _ = post(t, s, "/token", secretForm(codeForm(dpopCode(t, s, k), testRedirect)), "")
		wantOAuthError(t, st, m, http.StatusBadRequest, "invalid_dpop_proof")
	})
	t.Run("Bearer with IgnoreDPoP", func(t *testing.T) {
		s.SetBehavior(pipatest.Behavior{IgnoreDPoP: true})
		defer s.SetBehavior(pipatest.Behavior{})
		st, m, _ := post(t, s, "/token", secretForm(codeForm(dpopCode(t, s, k), testRedirect)), proof(t, k, "POST", tokenURL, "", nil))
		if st != http.StatusOK || m["token_type"] != "Bearer" {
			t.Errorf("IgnoreDPoP: %d %v, want a Bearer token", st, m)
		}
	})
}

func TestDPoPUserinfo(t *testing.T) {
	s := pipatest.NewServer()
	t.Cleanup(s.Close)
	k := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	other := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	st, m, _ := post(t, s, "/token", secretForm(codeForm(dpopCode(t, s, k), testRedirect)), proof(t, k, "POST", s.URL+"/token", "", nil))
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, m)
	}
	at := str(m["access_token"])
	ui := s.URL + "/userinfo"
	call := func(t *testing.T, scheme, p string) (int, http.Header) {
		t.Helper()
		req := must(http.NewRequest(http.MethodGet, ui+"?x=1", nil))
		req.Header.Set("Authorization", scheme+" "+at)
		if p != "" {
			req.Header.Set("DPoP", p)
		}
		resp := must(s.Client().Do(req))
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if st, _ := call(t, "DPoP", proof(t, k, "GET", ui, at, nil)); st != http.StatusOK {
		t.Fatalf("a good proof: %d", st)
	}
	for _, tc := range []struct {
		name, scheme, proof, want string
	}{
		{"as Bearer", "Bearer", "", `error="invalid_token"`},
		{"no proof", "DPoP", "", `error="invalid_dpop_proof"`},
		{"missing ath", "DPoP", proof(t, k, "GET", ui, "", nil), `error="invalid_dpop_proof"`},
		{"ath of another token", "DPoP", proof(t, k, "GET", ui, "other", nil), `error="invalid_dpop_proof"`},
		{"wrong key", "DPoP", proof(t, other, "GET", ui, at, nil), `error="invalid_dpop_proof"`},
		{"other htm", "DPoP", proof(t, k, "POST", ui, at, nil), `error="invalid_dpop_proof"`},
		{"htu with query", "DPoP", proof(t, k, "GET", ui+"?x=1", at, nil), `error="invalid_dpop_proof"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, h := call(t, tc.scheme, tc.proof)
			if st != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), tc.want) || !strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP ") {
				t.Errorf("got %d %q, want 401 with DPoP %s", st, h.Get("WWW-Authenticate"), tc.want)
			}
		})
	}
	t.Run("nonce", func(t *testing.T) {
		s.SetProfile(pipatest.Profile{DPoPNonce: true})
		defer s.SetProfile(pipatest.Profile{})
		st, h := call(t, "DPoP", proof(t, k, "GET", ui, at, nil))
		if st != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || h.Get("DPoP-Nonce") == "" {
			t.Fatalf("without nonce: %d %q %q", st, h.Get("WWW-Authenticate"), h.Get("DPoP-Nonce"))
		}
		n := h.Get("DPoP-Nonce")
		if st, _ := call(t, "DPoP", proof(t, k, "GET", ui, at, func(c map[string]any) { c["nonce"] = n })); st != http.StatusOK {
			t.Errorf("with the nonce: %d", st)
		}
	})
}
