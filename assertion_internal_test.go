package pipaauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClientAssertion(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name   string
		cfg    Config
		listed []string
		alg    jose.SignatureAlgorithm
	}{
		{"ES256", Config{ClientAssertionKey: ec, ClientAssertionKeyID: "k1"}, nil, jose.ES256},
		{"RS256 when PS256 is not listed", Config{ClientAssertionKey: rk}, []string{"RS256", "ES256"}, jose.RS256},
		{"PS256 when listed", Config{ClientAssertionKey: rk}, []string{"RS256", "PS256"}, jose.PS256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ClientID, cfg.Issuer, cfg.Now = "client-1", "https://pipa.example", func() time.Time { return now }
			alg, err := assertionAlg(cfg.ClientAssertionKey, tc.listed)
			if err != nil || alg != tc.alg {
				t.Fatalf("assertionAlg = %s, %v; want %s", alg, err, tc.alg)
			}
			ca, err := newClientAssertion(&cfg, alg)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 2 {
				s, err := ca.sign()
				if err != nil {
					t.Fatal(err)
				}
				tok, err := jwt.ParseSigned(s, []jose.SignatureAlgorithm{tc.alg})
				if err != nil {
					t.Fatal(err)
				}
				if kid := tok.Headers[0].KeyID; kid != cfg.ClientAssertionKeyID {
					t.Errorf("kid %q, want %q", kid, cfg.ClientAssertionKeyID)
				}
				var c jwt.Claims
				if err := tok.Claims(cfg.ClientAssertionKey.Public(), &c); err != nil {
					t.Fatal(err)
				}
				if c.Issuer != "client-1" || c.Subject != "client-1" || len(c.Audience) != 1 || c.Audience[0] != cfg.Issuer {
					t.Errorf("iss %q sub %q aud %q, want the client id twice and the issuer", c.Issuer, c.Subject, c.Audience)
				}
				if !c.IssuedAt.Time().Equal(now) || c.Expiry.Time().Sub(now) != 60*time.Second {
					t.Errorf("iat %v exp %v, want now and 60 s later", c.IssuedAt.Time(), c.Expiry.Time())
				}
				if c.ID == "" || seen[c.ID] {
					t.Errorf("jti %q: want a fresh one", c.ID)
				}
				seen[c.ID] = true
			}
		})
	}
	if _, err := assertionAlg(ec, []string{"PS256"}); err == nil {
		t.Error("ES256 accepted by a provider that lists PS256 only")
	}
}

func TestAssertionTransport(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := Config{ClientID: "client-1", Issuer: "https://pipa.example", Now: time.Now, ClientAssertionKey: ec}
	ca, err := newClientAssertion(&cfg, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	var form url.Values
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		form = nil
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			form, _ = url.ParseQuery(string(b))
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	tr := &assertionTransport{base: base, assertion: ca, endpoints: []string{"https://pipa.example/token"}}

	req, _ := http.NewRequest("POST", "https://pipa.example/token?x=1", strings.NewReader("grant_type=refresh_token&client_id=client-1&client_secret=s3cret"))
	req.SetBasicAuth("client-1", "s3cret")
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if form.Has("client_secret") || got.Header.Get("Authorization") != "" {
		t.Errorf("the secret left: form %v, Authorization %q", form, got.Header.Get("Authorization"))
	}
	if form.Get("client_assertion_type") != clientAssertionType || form.Get("client_assertion") == "" || form.Get("grant_type") != "refresh_token" {
		t.Errorf("form %v: want the assertion beside the request's parameters", form)
	}
	if got.GetBody == nil {
		t.Error("the rewritten body cannot be replayed")
	}
	// Other endpoints and methods pass untouched.
	for _, r := range []*http.Request{
		must(http.NewRequest("POST", "https://pipa.example/userinfo", strings.NewReader("a=1"))),
		must(http.NewRequest("GET", "https://pipa.example/token", nil)),
	} {
		tr.RoundTrip(r)
		if form.Has("client_assertion") {
			t.Errorf("%s %s got an assertion", r.Method, r.URL)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
