package pipaauth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth"
)

// onSecondHost makes b reach base's server under the host name example.com
// too (the test certificate's name), as a browser reaches an application
// by www. and the bare domain: cookies set for one are not sent to the
// other. It returns base with the host name replaced.
func (b *browser) onSecondHost(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	tr := b.c.Transport.(*http.Transport).Clone()
	dial := (&net.Dialer{}).DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, _ := net.SplitHostPort(addr); host == "example.com" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dial(ctx, network, addr)
	}
	b.c.Transport = tr
	return "https://example.com:" + u.Port()
}

func TestLoginStartedOnAnotherHostName(t *testing.T) {
	t.Parallel()
	for _, proxied := range []bool{false, true} {
		name := "direct"
		if proxied {
			name = "behind a proxy that rewrites Host"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var h *harness
			if proxied {
				h, _ = behindProxy(t, nil)
			} else {
				h = newHarness(t, setup{})
			}
			b := h.app.newBrowser(t)
			second := b.onSecondHost(t, h.app.url)
			auth := b.startLogin(second + "/private?tab=2")
			cb := b.authorize(auth)
			if !strings.HasPrefix(cb, h.app.url+"/callback?") {
				t.Fatalf("PiPA sends the browser to %q, want RedirectURL's host %s", cb, h.app.url)
			}
			before := h.provider.TokenRequests()
			r := b.get(cb)
			// A page, never a redirect: nothing here may redirect on r.Host.
			if r.status != http.StatusBadRequest || r.location() != "" {
				t.Fatalf("callback: %d to %q, want 400 and a page", r.status, r.location())
			}
			errs := h.app.takeErrors()
			var e *pipaauth.Error
			if len(errs) != 1 || !errors.Is(errs[0], pipaauth.ErrInvalidState) || !errors.As(errs[0], &e) {
				t.Fatalf("errors %v, want one ErrInvalidState", errs)
			}
			if e.Retry != "/login?return_to=%2Fprivate%3Ftab%3D2" {
				t.Errorf("Retry = %q, want a new login towards the page first asked for", e.Retry)
			}
			if !strings.Contains(r.body, `href="/login?return_to=%2Fprivate%3Ftab%3D2"`) {
				t.Errorf("the page offers no new login here towards /private?tab=2:\n%s", r.body)
			}
			redirectHost := strings.TrimPrefix(h.app.url, "https://")
			startHost := strings.TrimPrefix(second, "https://")
			if proxied {
				startHost = "backend.internal:8080" // what the backend saw
			}
			// The page names RedirectURL's host, never the start host (a
			// request's Host, which anyone chooses); the log names both.
			if strings.Contains(r.body, startHost) || !strings.Contains(r.body, redirectHost) {
				t.Errorf("the page should name %s and not %s:\n%s", redirectHost, startHost, r.body)
			}
			logs := h.logs.String()
			if !strings.Contains(logs, "start_host="+startHost) || !strings.Contains(logs, "redirect_host="+redirectHost) || !strings.Contains(logs, "serve the application on one host name") {
				t.Errorf("the log does not name both hosts and the fix:\n%s", logs)
			}
			if n := h.provider.TokenRequests(); n != before {
				t.Errorf("%d token requests, want none", n-before)
			}
			// The offered login, on RedirectURL's host, lands on the page.
			if loc := b.login("/login?return_to=%2Fprivate%3Ftab%3D2"); loc != "/private?tab=2" {
				t.Errorf("the new login lands on %q", loc)
			}
		})
	}
}

// A state without the signed start host (forged, or another deployment's)
// and a replayed one get the plain answer.
func TestUnknownStateIsNotAnotherHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	cb := b.authorize(b.startLogin("/private"))
	state := query(t, cb).Get("state")
	parts := strings.Split(state, ".")
	if len(parts) != 3 {
		t.Fatalf("state %q does not carry the start host", state)
	}
	forged := parts[0] + "." + "ZXZpbC5leGFtcGxlCi8" + "." + parts[2] // "evil.example\n/" under the real mac
	r := b.get(withQuery(t, cb, func(q url.Values) { q.Set("state", forged) }))
	expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidState, -1)
	if strings.Contains(r.body, "evil.example") || strings.Contains(h.logs.String(), "start_host") {
		t.Errorf("a forged start host was believed:\n%s", r.body)
	}
	if r := b.get(cb); r.status != http.StatusSeeOther {
		t.Fatalf("the real callback: %d", r.status)
	}
	b2 := h.app.newBrowser(t)
	r = b2.get(cb) // replayed where the cookie is missing: not another host
	expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidState, -1)
	if strings.Contains(h.logs.String(), "start_host") {
		t.Error("a replayed callback was taken for a login started on another host")
	}
}

// Behind a proxy that rewrites Host every state names the backend's host:
// a replay of a finished login (no attempt cookie any more) is "already
// used", not a login started on another host.
func TestReplayBehindProxyIsNotAnotherHost(t *testing.T) {
	t.Parallel()
	h, _ := behindProxy(t, nil)
	b := h.app.newBrowser(t)
	cb := b.authorize(b.startLogin("/private"))
	if r := b.get(cb); r.status != http.StatusSeeOther {
		t.Fatalf("login through the proxy: %d", r.status)
	}
	r := h.app.newBrowser(t).get(cb)
	expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidState, -1)
	if strings.Contains(h.logs.String(), "start_host") || strings.Contains(r.body, "backend.internal") {
		t.Errorf("a replayed callback was taken for a login started on another host:\n%s", r.body)
	}
}
