package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pipaauth/pipaauth"
)

// /metrics counts logins, failed logins by reason and logouts, and names
// no user.
func TestMetrics(t *testing.T) {
	d, srv := startDemo(t, false)
	c := newBrowser(t)

	r := get(t, c, srv.URL+"/metrics")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != metricsContentType {
		t.Fatalf("GET /metrics: status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	wantContains(t, r, "# TYPE pipademo_auth_events_total counter\n")
	wantNotContains(t, r, "pipademo_auth_events_total{")
	wantContains(t, get(t, c, srv.URL+"/"), `id="events-none"`)

	// A forged callback while logged out (a logged-in browser is sent home
	// instead), two logins and a logout.
	if r := get(t, c, srv.URL+"/callback?state=forged&code=forged"); r.status != http.StatusBadRequest {
		t.Errorf("forged callback: status %d, want 400", r.status)
	}
	login(t, c, srv, "/")
	login(t, c, srv, "/")
	do(t, c, http.MethodPost, srv.URL+"/logout", http.Header{"Origin": {srv.URL}, "Sec-Fetch-Site": {"same-origin"}})

	r = get(t, c, srv.URL+"/metrics")
	want := "# HELP pipademo_auth_events_total Outcomes pipaauth reported through Config.OnEvent since the demo started, by kind and reason (\"\" on success).\n" +
		"# TYPE pipademo_auth_events_total counter\n" +
		`pipademo_auth_events_total{kind="login",reason=""} 2` + "\n" +
		`pipademo_auth_events_total{kind="login_failed",reason="state_unknown"} 1` + "\n" +
		`pipademo_auth_events_total{kind="logout",reason=""} 1` + "\n"
	if r.body != want {
		t.Errorf("GET /metrics =\n%s\nwant\n%s", r.body, want)
	}
	wantNotContains(t, r, d.Provider.Subject(demoClientID, "alice"), "alice@example.com")

	// The home page shows the same counts.
	r = get(t, c, srv.URL+"/")
	wantContains(t, r, `<table id="events">`,
		`<tr><td>login</td><td><span class="muted">(success)</span></td><td class="n">2</td></tr>`,
		`<tr><td>login_failed</td><td>state_unknown</td><td class="n">1</td></tr>`,
		`<tr><td>logout</td><td><span class="muted">(success)</span></td><td class="n">1</td></tr>`)
	wantNotContains(t, r, `id="events-none"`)
}

func TestEventCountsConcurrent(t *testing.T) {
	var c eventCounts
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				c.OnEvent(context.Background(), pipaauth.Event{Kind: pipaauth.EventLogin})
				c.OnEvent(context.Background(), pipaauth.Event{Kind: pipaauth.EventLoginFailed, Reason: fmt.Sprint("r", i%2)})
			}
		})
	}
	wg.Wait()
	got := fmt.Sprint(c.Snapshot())
	if want := "[{login  800} {login_failed r0 400} {login_failed r1 400}]"; got != want {
		t.Errorf("counts %s, want %s", got, want)
	}
}

func TestEscapeLabel(t *testing.T) {
	if got, want := escapeLabel("a\\b\"c\nd"), `a\\b\"c\nd`; got != want {
		t.Errorf("escapeLabel = %q, want %q", got, want)
	}
	var c eventCounts
	c.OnEvent(context.Background(), pipaauth.Event{Kind: "odd\"kind", Reason: "x\ny"})
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, `{kind="odd\"kind",reason="x\ny"} 1`) {
		t.Errorf("/metrics with odd labels:\n%s", body)
	}
}
