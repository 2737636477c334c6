package pipaauth_test

// UserInfo refusals (found by the security review).

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth/pipatest"
)

// A UserInfo endpoint that refuses the request with a body echoing the
// bearer token (as some gateways do) must not get that body into the log
// (go-oidc's error holds the whole answer; the harness's checkLogs fails
// the test when an issued token appears in the log), and the refusal is
// told as one, not as an unreadable answer.
func TestUserInfoRefusalLogsNoBody(t *testing.T) {
	t.Parallel()
	ui := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_token","error_description":"token ` + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + ` is not valid here"}`))
	}))
	t.Cleanup(ui.Close)
	h := newHarness(t, setup{
		discovery: func(doc map[string]any) { doc["userinfo_endpoint"] = ui.URL + "/userinfo" },
	})
	h.setBehavior(pipatest.Behavior{EmailOnlyAtUserInfo: true})
	b := h.app.newBrowser(t)
	r := b.finish(b.startLogin("/private"))
	if r.status != http.StatusBadGateway || !strings.Contains(r.body, "refused to give this application") {
		t.Errorf("callback: %d %q, want 502 saying PiPA refused", r.status, r.body)
	}
	h.app.takeErrors()
}
