package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestProof(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://user:pw@rs.example/api/x?q=1#frag")
	now := time.Unix(1_800_000_000, 0)
	p, err := Proof(k, "POST", u, "the-token", "n-1", now)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(p, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != "dpop+jwt" {
		t.Errorf("typ %v, want dpop+jwt", typ)
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatal("no public jwk in the header")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	sum := sha256.Sum256([]byte("the-token"))
	want := map[string]any{"htm": "POST", "htu": "https://rs.example/api/x", "iat": float64(now.Unix()),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]), "nonce": "n-1"}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %v, want %v", k, c[k], v)
		}
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("jti %q: want a random value", jti)
	}
	tp, err := Thumbprint(&k.PublicKey)
	want2, _ := h.JSONWebKey.Thumbprint(0x5) // crypto.SHA256
	if err != nil || tp != base64.RawURLEncoding.EncodeToString(want2) {
		t.Errorf("Thumbprint %q, %v; want the jwk's RFC 7638 thumbprint", tp, err)
	}
}

func TestParse(t *testing.T) {
	k, _ := NewKey()
	der, _ := Marshal(k)
	if got, err := Parse(der); err != nil || !got.Equal(k) {
		t.Fatalf("Parse(Marshal(k)): %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, der := range map[string][]byte{
		"garbage": []byte("nope"),
		"P-384":   must(x509.MarshalPKCS8PrivateKey(p384)),
		"RSA":     must(x509.MarshalPKCS8PrivateKey(rk)),
	} {
		if _, err := Parse(der); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func resp(status int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(strings.NewReader(body))}
}

func TestWantsNonce(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *http.Response
		want bool
	}{
		{"token endpoint", resp(400, nil, `{"error":"use_dpop_nonce"}`), true},
		{"other 400", resp(400, nil, `{"error":"invalid_grant"}`), false},
		{"resource", resp(401, http.Header{"Www-Authenticate": {`DPoP error="use_dpop_nonce", error_description="x"`}}, ""), true},
		{"resource, Bearer", resp(401, http.Header{"Www-Authenticate": {`Bearer error="use_dpop_nonce"`}}, ""), false},
		{"resource, other error", resp(401, http.Header{"Www-Authenticate": {`DPoP error="invalid_token"`}}, ""), false},
		{"200", resp(200, nil, `{"error":"use_dpop_nonce"}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := wantsNonce(tc.r); got != tc.want {
				t.Errorf("wantsNonce = %v, want %v", got, tc.want)
			}
		})
	}
	// The body of a 400 that is not a challenge stays readable, whole.
	long := `{"error":"invalid_grant","x":"` + strings.Repeat("a", 100<<10) + `"}`
	r := resp(400, nil, long)
	wantsNonce(r)
	if b, _ := io.ReadAll(r.Body); string(b) != long {
		t.Errorf("body after wantsNonce: %d bytes, want the %d of the answer", len(b), len(long))
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransport(t *testing.T) {
	k, _ := NewKey()
	var proofs []string
	var bodies []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		proofs = append(proofs, r.Header.Get(Header))
		var b []byte
		if r.Body != nil {
			b, _ = io.ReadAll(r.Body)
		}
		bodies = append(bodies, string(b))
		if len(proofs) == 1 {
			return resp(400, http.Header{"Dpop-Nonce": {"n-2"}}, `{"error":"use_dpop_nonce"}`), nil
		}
		return resp(200, nil, "ok"), nil
	})
	tr := &Transport{Base: base, Nonces: &Nonces{}, Now: time.Now}
	req, _ := http.NewRequestWithContext(WithKey(t.Context(), k), "POST", "https://as.example/token", strings.NewReader("a=1"))
	res, err := tr.RoundTrip(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("RoundTrip: %v, %v", res, err)
	}
	if len(proofs) != 2 || proofs[0] == proofs[1] || bodies[1] != "a=1" {
		t.Fatalf("sent %d requests with bodies %q, want a retry with a new proof and the same body", len(proofs), bodies)
	}
	claims := func(p string) map[string]any {
		jws, _ := jose.ParseSigned(p, []jose.SignatureAlgorithm{jose.ES256})
		var c map[string]any
		json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
		return c
	}
	if claims(proofs[1])["nonce"] != "n-2" || claims(proofs[0])["nonce"] != nil {
		t.Errorf("nonces %v then %v, want none then n-2", claims(proofs[0])["nonce"], claims(proofs[1])["nonce"])
	}
	// Without a key in the context nor a Key func, requests pass as they are.
	req, _ = http.NewRequest("GET", "https://rs.example/", nil)
	tr.RoundTrip(req)
	if proofs[2] != "" {
		t.Error("a request without a key got a proof")
	}
}
