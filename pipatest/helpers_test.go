package pipatest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

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

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// browser is a client with a cookie jar that does not follow redirects.
func browser(t *testing.T, s *pipatest.Server) *http.Client {
	t.Helper()
	c := noRedirects(s.Client())
	c.Jar, _ = cookiejar.New(nil)
	return c
}

func send(t *testing.T, c *http.Client, u string) (int, string, *url.URL) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := resp.Location()
	return resp.StatusCode, string(b), loc
}
