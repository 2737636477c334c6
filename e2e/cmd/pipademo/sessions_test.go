package main

import (
	"net/http"
	"strings"
	"testing"
)

// The sessions routes refuse a POST from another site (and keep every
// session); same-origin, "Sign out all other devices" ends the others.
func TestSessionsCrossOrigin(t *testing.T) {
	_, srv := startDemo(t, false)
	laptop, phone := newBrowser(t), newBrowser(t)
	login(t, laptop, srv, "/")
	login(t, phone, srv, "/")
	r := get(t, laptop, srv.URL+"/sessions")
	if r.status != 200 || strings.Count(r.body, `class="session`) != 2 {
		t.Fatalf("GET /sessions: %d, want 2 sessions listed:\n%s", r.status, r.body)
	}
	for _, path := range []string{"/sessions/end", "/sessions/end-others"} {
		r := do(t, laptop, http.MethodPost, srv.URL+path, http.Header{"Sec-Fetch-Site": {"cross-site"}})
		if r.status != http.StatusForbidden {
			t.Errorf("cross-site POST %s: status %d, want 403", path, r.status)
		}
	}
	if r := getJSON(t, phone, srv.URL+"/api/me"); r.status != http.StatusOK {
		t.Fatalf("the phone after refused cross-site POSTs: %d", r.status)
	}
	r = do(t, laptop, http.MethodPost, srv.URL+"/sessions/end-others", http.Header{"Origin": {srv.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if r.status != 200 || !strings.Contains(r.body, "Signed out 1 device.") {
		t.Errorf("POST /sessions/end-others: %d:\n%s", r.status, r.body)
	}
	if r := getJSON(t, phone, srv.URL+"/api/me"); r.status != http.StatusUnauthorized {
		t.Errorf("the phone after Sign out all other devices: %d, want 401", r.status)
	}
	if r := getJSON(t, laptop, srv.URL+"/api/me"); r.status != http.StatusOK {
		t.Errorf("the laptop: %d, want 200", r.status)
	}
}

func TestDevice(t *testing.T) {
	for ua, want := range map[string]string{
		"": "Unknown device",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36":                   "Chrome on Linux",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0":                                    "Firefox on Windows",
		"Go-http-client/1.1": "Go program",
	} {
		if got := device(ua); got != want {
			t.Errorf("device(%q) = %q, want %q", ua, got, want)
		}
	}
}
