package pipaauth_test

// Full-flow tests of return paths (see harness_test.go for the harness):
// where a login lands, and open redirect payloads that must land on "/".

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
)

func TestReturnPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		start string // navigation that starts the login
		want  string
	}{
		{"/private?x=1&y=2", "/private?x=1&y=2"},
		{"/private?q=caf%C3%A9&r=a+b&s=%2F", "/private?q=caf%C3%A9&r=a+b&s=%2F"},
		{"/private?next=%2F%2Fapp.example", "/private?next=%2F%2Fapp.example"}, // an encoded "//" in a query is data
		{"/private?q=a%20b&r=c+d", "/private?q=a%20b&r=c+d"},                   // byte for byte: %20 stays %20
		{"/private?next=//evil.example", "/"},
		{"/login?return_to=" + url.QueryEscape("/private?q=a%20b"), "/private?q=a%20b"},
		{"/login?return_to=" + url.QueryEscape("/private?z=3"), "/private?z=3"},
		{"/login?return_to=/private?z=4", "/private?z=4"},
		{"/login?return_to=%2Fadmin", "/admin"},
		{"/login", "/"},
		{"/login?return_to=", "/"},
		{"/login?return_to=%2Fa&return_to=%2Fb", "/"},
		{"/login?return_to=https%3A%2F%2Fevil.example%2F", "/"},
		{"/login?return_to=%2F%2Fevil.example", "/"},
	}
	for _, tt := range tests {
		b := h.app.newBrowser(t)
		if got := b.login(tt.start); got != tt.want {
			t.Errorf("login from %s lands on %q, want %q", tt.start, got, tt.want)
		}
	}
}

func TestOpenRedirectPayloads(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("testdata", "openredirects.txt"))
	if err != nil {
		t.Fatalf("the open redirect payloads: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	// One payload a line, the first being the empty string.
	var payloads []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		p, err := url.QueryUnescape(line)
		if err != nil {
			p = line
		}
		payloads = append(payloads, p)
	}
	if len(payloads) != 559 {
		t.Fatalf("read %d payloads, want 559", len(payloads))
	}

	// 559 logins take a while on a loaded machine: a real clock, so that
	// the ID tokens' iat never runs ahead of a frozen one.
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.Now = time.Now }})
	b := h.app.newBrowser(t)
	for _, p := range payloads {
		h.clock.CatchUp() // 559 logins may take over a minute under -race on a busy machine
		start := b.get("/login?return_to=" + url.QueryEscape(p))
		if start.status != http.StatusFound || !strings.HasPrefix(start.location(), h.provider.URL+"/authorize?") {
			t.Errorf("return_to %q: /login answered %d to %q, want 302 to the provider", p, start.status, start.location())
			continue
		}
		r := b.finish(start.location())
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("return_to %q: landed with %d on %q, want 303 to %q", p, r.status, r.location(), "/")
		}
	}
	t.Logf("%d payloads", len(payloads))
}
