package pipaauth_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestTokenNotKept(t *testing.T) {
	ta := newTokenApp(t, false, nil, nil)
	if code, body := ta.get(t, "/token"); code != http.StatusConflict {
		t.Errorf("Token without KeepTokens: %d %q, want 409 (ErrNoTokens)", code, body)
	}
}

func TestTokenRefresh(t *testing.T) {
	ta := newTokenApp(t, true, nil, nil)
	code, first := ta.get(t, "/token")
	if code != 200 || first == "" {
		t.Fatalf("Token: %d %q", code, first)
	}
	before := ta.provider.TokenRequests()
	if _, again := ta.get(t, "/token"); again != first || ta.provider.TokenRequests() != before {
		t.Fatalf("a live access token was refreshed: got %q (was %q)", again, first)
	}
	ta.advance(2 * time.Hour) // past the access token's hour
	code, second := ta.get(t, "/token")
	if code != 200 || second == first {
		t.Fatalf("after expiry: %d %q, want a new access token", code, second)
	}
	if n := ta.provider.TokenRequests() - before; n != 1 {
		t.Fatalf("refresh made %d token requests, want 1", n)
	}
	if req, _ := ta.provider.LastTokenRequest(); req.GrantType != "refresh_token" {
		t.Errorf("last grant = %q, want refresh_token", req.GrantType)
	}
	// The rotated tokens were written back: the next request refreshes
	// nothing, and a later refresh spends the new refresh token (the old
	// one is dead at the provider).
	if _, again := ta.get(t, "/token"); again != second || ta.provider.TokenRequests()-before != 1 {
		t.Errorf("the refreshed tokens were not written back to the session")
	}
	ta.advance(2 * time.Hour)
	if code, third := ta.get(t, "/token"); code != 200 || third == second {
		t.Errorf("second refresh: %d %q", code, third)
	}
}

func TestTokenConcurrentRefreshSpendsOnce(t *testing.T) {
	ta := newTokenApp(t, true, nil, nil)
	ta.advance(2 * time.Hour)
	before := ta.provider.TokenRequests()
	// Ten requests carrying the same pre-refresh cookie, as parallel
	// requests of one browser would.
	u := ta.app.URL + "/token"
	req, _ := http.NewRequest("GET", u, nil)
	for _, c := range ta.jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	cookie := req.Header.Get("Cookie")
	var wg sync.WaitGroup
	results := make([]string, 10)
	for i := range results {
		wg.Go(func() {
			r, _ := http.NewRequest("GET", u, nil)
			r.Header.Set("Cookie", cookie)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Errorf("request %d: %d %q", i, resp.StatusCode, b)
			}
			results[i] = string(b)
		})
	}
	wg.Wait()
	if n := ta.provider.TokenRequests() - before; n != 1 {
		t.Errorf("10 concurrent refreshes made %d token requests, want 1", n)
	}
	for i, r := range results {
		if r != results[0] {
			t.Errorf("request %d got access token %q, request 0 %q", i, r, results[0])
		}
	}
	// Spending the refresh token twice would have made the provider revoke
	// the family: the session still refreshes.
	ta.get(t, "/token") // the jar's cookie: brings its session up to date
	ta.advance(2 * time.Hour)
	if code, body := ta.get(t, "/token"); code != 200 {
		t.Errorf("refresh after the concurrent one: %d %q", code, body)
	}
}

func TestTokenRefreshRefusedEndsSession(t *testing.T) {
	ta := newTokenApp(t, true, nil, nil)
	ta.provider.RevokeRefreshTokens("alice")
	ta.advance(2 * time.Hour)
	ta.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if code, body := ta.get(t, "/token"); code != http.StatusUnauthorized {
		t.Fatalf("refused refresh: %d %q, want 401 (ErrLoginRequired)", code, body)
	}
	// The session was cleared: the next protected navigation starts a login.
	if code, _ := ta.get(t, "/token"); code != http.StatusFound {
		t.Errorf("after a refused refresh the session still works: %d, want 302 to log in", code)
	}
}

func TestTokenRefreshProviderDownKeepsSession(t *testing.T) {
	ta := newTokenApp(t, true, nil, nil)
	ta.advance(2 * time.Hour)
	ta.provider.SetBehavior(pipatest.Behavior{TokenStatus: http.StatusInternalServerError})
	if code, body := ta.get(t, "/token"); code != http.StatusBadGateway {
		t.Fatalf("refresh with the provider failing: %d %q, want 502", code, body)
	}
	ta.provider.SetBehavior(pipatest.Behavior{})
	// A transient failure spent nothing and is not remembered: the very
	// next request refreshes.
	if code, body := ta.get(t, "/token"); code != 200 {
		t.Errorf("after the provider recovered: %d %q, want 200 (the session must survive a transient failure)", code, body)
	}
}

func TestClientCallsAPIAsUser(t *testing.T) {
	ta := newTokenApp(t, true, nil, nil)
	code, body := ta.get(t, "/userinfo")
	if code != 200 {
		t.Fatalf("userinfo through Client: %d %q", code, body)
	}
	var info struct{ Sub string }
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.Sub != ta.provider.Subject(pipatest.DefaultClientID, "alice") {
		t.Errorf("userinfo = %q (%v), want alice's subject", body, err)
	}
	if strings.Contains(body, "error") {
		t.Errorf("userinfo body %q", body)
	}
}

// Tokens too large for a cookie are a configuration problem: the login fails
// with a clear error that points at SessionStore, and no cookie is dropped
// silently.
func TestKeepTokensCookieTooLarge(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	provider.SetBehavior(pipatest.Behavior{
		TokenHook: func(resp map[string]any) {
			resp["access_token"] = strings.Repeat("A", 3000) // a large JWT access token
		},
		ClaimsHook: func(claims map[string]any) { delete(claims, "at_hash") }, // at_hash would catch the swap
	})
	logs := &syncBuffer{}
	var got error
	pa := newTestApp(t, provider, func(c *pipaauth.Config) {
		c.KeepTokens = true
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			got = err
			pipaauth.DefaultErrorHandler("/login")(w, r, err)
		}
	})
	app, mux, auth := pa.srv, pa.mux, pa.auth
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(app.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !errors.Is(got, pipaauth.ErrCookieTooLarge) {
		t.Fatalf("login with oversized tokens: %d, %v; want 500 and ErrCookieTooLarge", resp.StatusCode, got)
	}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if len(sc) > 4096 {
			t.Errorf("a %d-byte cookie was written", len(sc))
		}
	}
	if !strings.Contains(logs.String(), "SessionStore") {
		t.Errorf("the log does not point at SessionStore:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), strings.Repeat("A", 100)) {
		t.Error("the log holds the access token")
	}
}

// Token's errors are this package's *Error, with the status to answer and a
// safe reason, still wrapping the sentinel.
func TestTokenErrorIsPublicType(t *testing.T) {
	ta := newTokenApp(t, true, nil, nil)
	_, err := ta.auth.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/token", nil)) // no session cookie
	var e *pipaauth.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Reason == "" || !errors.Is(err, pipaauth.ErrLoginRequired) {
		t.Errorf("Token without a session: %#v, want a *pipaauth.Error with status 401 and a reason, wrapping ErrLoginRequired", err)
	}
}
