package httpx

import (
	"errors"
	"strings"
	"testing"
)

func TestBrief(t *testing.T) {
	secret := "eyJhbGciOi.secret-token"
	tests := []struct {
		in     string
		want   string
		status int
	}{
		{"401 Unauthorized: {\"error\":\"invalid_token\",\"error_description\":\"token " + secret + "\"}", "401 Unauthorized (response body not logged)", 401},
		{"oidc: get keys failed: 500 Internal Server Error <html>" + secret, "oidc: get keys failed: 500 Internal Server Error (response body not logged)", 500},
		{"502 Bad Gateway: " + strings.Repeat("x", 5000), "502 Bad Gateway (response body not logged)", 502},
		{"oidc: issuer did not match: " + strings.Repeat("y", 300), "oidc: issuer did not match: " + strings.Repeat("y", 200-len("oidc: issuer did not match: ")) + "…", 0},
		{"line\nbreak\x00", "line break ", 0},
	}
	for _, tt := range tests {
		status, got := Brief(errors.New(tt.in))
		if got.Error() != tt.want || status != tt.status {
			t.Errorf("Brief(%.40q) = %q, %d; want %q, %d", tt.in, got, status, tt.want, tt.status)
		}
		if strings.Contains(got.Error(), secret) {
			t.Errorf("Brief(%.40q) kept the token", tt.in)
		}
	}
}
