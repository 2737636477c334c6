package pipaauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The start host in the signed state is r.Host, which any client chooses:
// an attacker starts a login with a Host of their choosing, gets the state
// signed, and sends a victim to the callback with it. The victim's page on
// the real site then names the attacker's host as "another address of this
// site".
func TestWrongHostPageNamesNoRequestHost(t *testing.T) {
	h := newHarness(t, setup{})
	a := h.app
	client := a.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", a.url+a.loginPath+"?return_to=/private", nil)
	req.Host = "secure-login.attacker.example"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	state := loc.Query().Get("state")
	if state == "" {
		t.Fatalf("login start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The victim, with no attempt cookie, follows the attacker's link.
	victim := a.newBrowser(t)
	r := victim.get(a.cfg.RedirectURL + "?code=x&state=" + url.QueryEscape(state))
	t.Logf("victim sees %d: %q", r.status, r.body)
	if strings.Contains(r.body, "attacker.example") {
		t.Errorf("the site's own error page names an attacker-chosen host as another address of the site")
	}
	a.takeErrors()
}
