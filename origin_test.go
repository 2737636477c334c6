package pipaauth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth"
)

// behindProxy puts h's app behind a TLS reverse proxy that rewrites Host to
// an internal name, as a load balancer or ingress may: the proxy's URL is
// the public one (RedirectURL's), and the browser talks to the proxy.
func behindProxy(t *testing.T, configure func(*pipaauth.Config)) (*harness, string) {
	t.Helper()
	var backend *url.URL
	var h *harness
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backend)
			pr.Out.Host = "backend.internal:8080"
		},
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) { return h.provider.Client().Transport.RoundTrip(r) }),
	})
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	h = newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		cfg.RedirectURL = proxy.URL + "/callback"
		if configure != nil {
			configure(cfg)
		}
	}})
	var err error
	if backend, err = url.Parse(h.app.url); err != nil {
		t.Fatal(err)
	}
	h.app.url = proxy.URL
	return h, proxy.URL
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPublicOriginBehindHostRewritingProxy(t *testing.T) {
	t.Parallel()
	h, public := behindProxy(t, nil)
	httpOrigin := "http://" + strings.TrimPrefix(public, "https://")
	for _, tc := range []struct {
		name   string
		header []string
		ok     bool
	}{
		{"Origin without Sec-Fetch-Site (Safari before 16.4)", []string{"Origin", public}, true},
		{"Origin and Sec-Fetch-Site", []string{"Origin", public, "Sec-Fetch-Site", "same-origin"}, true},
		{"Sec-Fetch-Site without Origin", []string{"Sec-Fetch-Site", "same-origin"}, true},
		{"foreign Origin", []string{"Origin", "https://evil.example"}, false},
		{"foreign Origin, cross-site", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, false},
		{"the backend's Host as Origin", []string{"Origin", "https://backend.internal:8080"}, false},
		{"http Origin for an https application", []string{"Origin", httpOrigin}, false},
		{"http Origin, same-origin", []string{"Origin", httpOrigin, "Sec-Fetch-Site", "same-origin"}, false},
		{"another port", []string{"Origin", public + "1"}, false},
		{"null Origin", []string{"Origin", "null"}, false},
		{"same-site without Origin", []string{"Sec-Fetch-Site", "same-site"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			if loc := b.login("/private"); loc != "/private" {
				t.Fatalf("login through the proxy lands on %q, want /private", loc)
			}
			// Login start by POST.
			r := b.post("/login", tc.header...)
			if tc.ok && (r.status != http.StatusFound || !strings.HasPrefix(r.location(), h.provider.URL+"/authorize?")) {
				t.Errorf("POST /login: %d to %q, want 302 to PiPA", r.status, r.location())
			}
			if !tc.ok && r.status != http.StatusForbidden {
				t.Errorf("POST /login: %d, want 403", r.status)
			}
			// Logout.
			r = b.post("/logout", tc.header...)
			switch {
			case tc.ok && r.status != http.StatusSeeOther:
				t.Errorf("POST /logout: %d, want 303", r.status)
			case tc.ok:
				b.mustBeLoggedOut()
			case r.status != http.StatusForbidden:
				t.Errorf("POST /logout: %d, want 403", r.status)
			default:
				b.mustUser()
			}
			for _, err := range h.app.takeErrors() {
				if tc.ok || !errors.Is(err, pipaauth.ErrCrossOrigin) {
					t.Errorf("error %v", err)
				}
			}
		})
	}
}
