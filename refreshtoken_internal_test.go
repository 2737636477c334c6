package pipaauth

import (
	"net/http"
	"testing"
)

func TestInvalidToken(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    bool
	}{
		{[]string{`Bearer error="invalid_token"`}, true},
		{[]string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`}, true},
		{[]string{`bearer ERROR=invalid_token`}, true},
		{[]string{`DPoP algs="ES256", error="invalid_token"`}, true},
		{[]string{`Basic realm="a, b", Bearer error="invalid_token"`}, true},
		{[]string{`Basic realm="x"`, `Bearer error="invalid_token"`}, true},
		{[]string{`Bearer realm="a\"b", error="invalid_token"`}, true},
		{[]string{`Newauth abc/def==, Bearer error="invalid_token"`}, true},
		{nil, false},
		{[]string{`Bearer`}, false},
		{[]string{`Bearer realm="example"`}, false},
		{[]string{`Bearer error="insufficient_scope"`}, false},
		{[]string{`Bearer error="Invalid_Token"`}, false},
		{[]string{`Basic error="invalid_token"`}, false},
		{[]string{`Bearer realm="error=\"invalid_token\""`}, false},
		{[]string{`Bearer error_description="error=invalid_token"`}, false},
		{[]string{`Bearer error="invalid_token`}, false}, // unterminated
		{[]string{`Bearer realm="x", error`}, false},
	} {
		h := http.Header{}
		for _, v := range tc.headers {
			h.Add("WWW-Authenticate", v)
		}
		if got := invalidToken(h); got != tc.want {
			t.Errorf("invalidToken(%q) = %v, want %v (challenges %+v)", tc.headers, got, tc.want, parseChallenges(append(tc.headers, "")[0]))
		}
	}
}

func FuzzParseChallenges(f *testing.F) {
	f.Add(`Bearer realm="example", error="invalid_token", error_description="x"`)
	f.Add(`Basic realm="a, b", DPoP algs="ES256", error=invalid_token`)
	f.Fuzz(func(t *testing.T, s string) {
		parseChallenges(s) // must not panic or hang
	})
}
