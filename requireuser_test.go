package pipaauth_test

// Full-flow tests of RequireUser (see harness_test.go for the harness).

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth/pipatest"
)

func TestRequireUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{defaultErrors: true})
	alice := pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true}
	tests := []struct {
		name  string
		user  pipatest.User
		admin int // AllowEmails("alice@example.com")
		staff int // AllowEmailDomains("example.com")
		ids   int // AllowUserIDs(alice's subject)
	}{
		{"alice", alice, 200, 200, 200},
		{"alice in capitals", pipatest.User{Name: "alice", Email: "ALICE@Example.COM", EmailVerified: true, ShareEmail: true}, 200, 200, 200},
		{"alice unverified", pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: false, ShareEmail: true}, 403, 403, 200},
		{"alice not sharing", pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true}, 403, 403, 200},
		{"bob", pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"double @", pipatest.User{Name: "mallory", Email: "alice@example.com@example.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"a@b@example.com", pipatest.User{Name: "mallory", Email: "a@b@example.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"subdomain", pipatest.User{Name: "carol", Email: "carol@sub.example.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
		{"look-alike domain", pipatest.User{Name: "carol", Email: "carol@evilexample.com", EmailVerified: true, ShareEmail: true}, 403, 403, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.provider.SetUser(tt.user)
			b := h.app.newBrowser(t)
			if got := b.login("/admin"); got != "/admin" {
				t.Errorf("login lands on %q, want /admin", got)
			}
			for _, c := range []struct {
				path string
				want int
			}{{"/admin", tt.admin}, {"/staff", tt.staff}, {"/ids", tt.ids}} {
				r := b.get(c.path)
				if r.status != c.want {
					t.Errorf("GET %s: %d, want %d", c.path, r.status, c.want)
					continue
				}
				if r.status == http.StatusForbidden {
					if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
						t.Errorf("GET %s: Content-Type %q, want the HTML error page", c.path, ct)
					}
					if !strings.Contains(r.body, "403 Forbidden") {
						t.Errorf("GET %s: the page does not say 403 Forbidden:\n%s", c.path, r.body)
					}
				}
			}
		})
	}
	b := h.app.newBrowser(t)
	if r := b.get("/admin"); r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?") {
		t.Errorf("GET /admin logged out: %d to %q, want 302 to the provider", r.status, r.location())
	}
	if r := b.get("/admin", "Accept", "application/json"); r.status != http.StatusUnauthorized {
		t.Errorf("GET /admin logged out as an API client: %d, want 401", r.status)
	}
}
