package callback

import (
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestTokenUserID(t *testing.T) {
	tests := []struct {
		name  string
		extra any
		want  string
		ok    bool
	}{
		{"json string", map[string]any{"user_id": "u1"}, "u1", true},
		{"json absent", map[string]any{}, "", true},
		{"json empty string", map[string]any{"user_id": ""}, "", false},
		{"json integer", map[string]any{"user_id": float64(12345)}, "12345", true},
		{"json 2^53-1", map[string]any{"user_id": float64(1<<53 - 1)}, "9007199254740991", true},
		{"json 2^53", map[string]any{"user_id": float64(1 << 53)}, "", false},
		{"json fraction", map[string]any{"user_id": 1.5}, "", false},
		{"json negative", map[string]any{"user_id": float64(-1)}, "", false},
		{"json object", map[string]any{"user_id": map[string]any{}}, "", false},
		{"json bool", map[string]any{"user_id": true}, "", false},
		{"form string", url.Values{"user_id": {"u1"}}, "", false},
		{"form absent", url.Values{}, "", false},
		{"form integer with leading zeros", url.Values{"user_id": {"007"}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := (&oauth2.Token{AccessToken: "a"}).WithExtra(tt.extra)
			got, err := tokenUserID(tok)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("tokenUserID = %q, %v; want %q, ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	if got := Expiry(&oauth2.Token{ExpiresIn: 60}, now); !got.Equal(now.Add(time.Minute)) {
		t.Errorf("expires_in 60: %v", got)
	}
	wall := time.Unix(1_900_000_000, 0)
	if got := Expiry(&oauth2.Token{Expiry: wall}, now); !got.Equal(wall) {
		t.Errorf("form-encoded Expiry: %v, want %v", got, wall)
	}
	if got := Expiry(&oauth2.Token{}, now); !got.IsZero() {
		t.Errorf("no expiry: %v, want zero", got)
	}
}
