package pipaauth_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestOriginMustBeExactlyThePublicOrigin(t *testing.T) {
	h := newHarness(t, setup{})
	a := h.app
	good := strings.TrimSuffix(a.url, "/")
	host := strings.TrimPrefix(good, "https://")
	for _, c := range []struct {
		name   string
		header []string
		ok     bool
	}{
		{"same origin", []string{"Origin", good}, true},
		{"http scheme", []string{"Origin", "http://" + host}, false},
		{"null", []string{"Origin", "null"}, false},
		{"empty", []string{"Origin", ""}, false},
		{"upper case", []string{"Origin", strings.ToUpper(good)}, true},
		{"userinfo", []string{"Origin", "https://evil.example@" + host}, false},
		{"trailing dot host", []string{"Origin", "https://" + strings.Replace(host, ":", ".:", 1)}, false},
		{"cross-site fetch no origin", []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"same-site fetch no origin", []string{"Sec-Fetch-Site", "same-site"}, false},
		{"origin with path", []string{"Origin", good + "/x"}, false},
		{"origin with backslash", []string{"Origin", "https://evil.example\\@" + host}, false},
	} {
		b := a.newBrowser(t)
		b.login("/private")
		r := b.post("/logout", c.header...)
		ok := r.status == http.StatusSeeOther
		t.Logf("%s: %d", c.name, r.status)
		if ok != c.ok {
			t.Errorf("%s %q: logout %d, want allowed=%v", c.name, c.header, r.status, c.ok)
		}
		a.takeErrors()
	}
}
