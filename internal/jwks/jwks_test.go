package jwks

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func jwk(t *testing.T, k jose.JSONWebKey) string {
	t.Helper()
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	good := []string{
		jwk(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "rsa", Algorithm: "RS256", Use: "sig"}),
		jwk(t, jose.JSONWebKey{Key: rsaKey, KeyID: "rsa-private"}), // a published private key: its public half
		jwk(t, jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "p384"}),
		jwk(t, jose.JSONWebKey{Key: edPub, KeyID: "ed25519", Algorithm: "EdDSA"}),
	}
	tests := []struct {
		name, key, reason string
	}{
		{"short RSA", jwk(t, jose.JSONWebKey{Key: &small.PublicKey, KeyID: "x"}), "RSA key of 1024 bits, shorter than 2048"},
		{"EC alg of another curve", jwk(t, jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "x", Algorithm: "ES256"}), "unsupported algorithm for this key type"},
		{"RSA with an EC alg", jwk(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "x", Algorithm: "ES256"}), "unsupported algorithm for this key type"},
		{"secp256k1", `{"kty":"EC","crv":"secp256k1","kid":"x","x":"AA","y":"AA"}`, "unsupported curve"},
		{"X448", `{"kty":"OKP","crv":"X448","kid":"x","x":"AA"}`, "unsupported curve"},
		{"oct", `{"kty":"oct","kid":"x","k":"AAAA"}`, "symmetric key: never used to verify"},
		{"no kty", `{"kid":"x"}`, "no key type (kty)"},
		{"unknown kty", `{"kty":"AKP","kid":"x"}`, "unsupported key type"},
		{"malformed RSA", `{"kty":"RSA","kid":"x","n":"%%%","e":"AQAB"}`, "malformed key (go-jose cannot read it)"},
		{"not an object", `[1,2]`, "not a JSON object with string kty, crv, alg, kid and use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"keys":[` + tt.key + "," + strings.Join(good, ",") + `]}`
			keys, skipped, err := Parse([]byte(body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(keys) != len(good) {
				t.Errorf("%d usable keys, want %d", len(keys), len(good))
			}
			for _, k := range keys {
				if !k.IsPublic() {
					t.Errorf("key %q is not public", k.KeyID)
				}
			}
			if len(skipped) != 1 || skipped[0].Reason != tt.reason {
				t.Errorf("skipped %+v, want one with reason %q", skipped, tt.reason)
			}
		})
	}
}

func TestParseRefusesSetsWithoutUsableKey(t *testing.T) {
	enc := `{"kty":"RSA","use":"enc","kid":"e","n":"AQAB","e":"AQAB"}`
	for _, body := range []string{`not json`, `{}`, `{"keys":[]}`, `{"keys":[` + enc + `]}`, `{"keys":[{"kty":"oct","kid":"s","k":"AAAA"}]}`} {
		_, _, err := Parse([]byte(body))
		if err == nil {
			t.Errorf("Parse(%s): no error", body)
		}
		var none NoUsableKey
		if errors.As(err, &none) && len(none.Skipped) > 0 && !strings.Contains(err.Error(), `kid "s"`) {
			t.Errorf("Parse(%s): %v does not name the skipped key", body, err)
		}
	}
	// A use other than sig is left out without being reported as skipped.
	_, skipped, _ := Parse([]byte(`{"keys":[` + enc + `]}`))
	if len(skipped) != 0 {
		t.Errorf("an encryption key was reported skipped: %+v", skipped)
	}
	var set json.RawMessage = []byte(`{"keys":[` + enc + `]}`)
	if _, _, err := Parse(set); err == nil || !strings.Contains(err.Error(), "whose use is not sig") {
		t.Errorf("Parse(only an enc key): %v, want it to say so", err)
	}
}
