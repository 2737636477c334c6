package pipaauth_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// resourceServer is an API that accepts access tokens unless refused: it
// answers a refused one with 401 and challenge (a WWW-Authenticate value,
// none when ""), and records every token it was sent.
type resourceServer struct {
	srv *httptest.Server

	mu        sync.Mutex
	refused   map[string]bool
	refuseAll bool
	challenge string
	seen      []string
	bodies    []string
}

func newResourceServer(t *testing.T) *resourceServer {
	t.Helper()
	rs := &resourceServer{refused: map[string]bool{}, challenge: `Bearer realm="api", error="invalid_token", error_description="The access token expired"`}
	rs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		body, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.seen = append(rs.seen, tok)
		rs.bodies = append(rs.bodies, string(body))
		refused := !ok || rs.refused[tok] || rs.refuseAll
		challenge := rs.challenge
		rs.mu.Unlock()
		if refused {
			if challenge != "" {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "refused")
			return
		}
		io.WriteString(w, "ok "+string(body))
	}))
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *resourceServer) refuse(tok string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.refused[tok] = true
}

func (rs *resourceServer) set(f func(rs *resourceServer)) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	f(rs)
}

func (rs *resourceServer) tokens() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.seen...)
}

// noExpiryApp is a logged-in application whose provider answers token
// requests without expires_in. /token answers Token's access token,
// /refresh RefreshToken's, /api calls the resource server through Client
// (GET; POST with a replayable body; POST "stream" with one that is not)
// and answers its status, body and any error.
type noExpiryApp struct {
	provider *pipatest.Server
	rs       *resourceServer
	auth     *pipaauth.Auth
	srv      *httptest.Server
	client   *http.Client
	offset   atomic.Int64 // nanoseconds added to the application's clock
}

func newNoExpiryApp(t *testing.T, edit func(*pipaauth.Config)) *noExpiryApp {
	t.Helper()
	na := &noExpiryApp{provider: pipatest.NewServer(), rs: newResourceServer(t)}
	t.Cleanup(na.provider.Close)
	na.provider.SetBehavior(pipatest.Behavior{TokenHook: func(resp map[string]any) { delete(resp, "expires_in") }})
	ta := newTestApp(t, na.provider, func(c *pipaauth.Config) {
		c.KeepTokens = true
		c.Now = func() time.Time { return time.Now().Add(time.Duration(na.offset.Load())) }
		if edit != nil {
			edit(c)
		}
	})
	na.auth, na.srv = ta.auth, ta.srv
	ta.mux.Handle("/{$}", text("home"))
	ta.mux.Handle("/login", na.auth.LoginHandler())
	ta.mux.Handle("/callback", na.auth.CallbackHandler())
	answer := func(w http.ResponseWriter, tok string, err error) {
		switch {
		case errors.Is(err, pipaauth.ErrLoginRequired):
			http.Error(w, "login required", http.StatusUnauthorized)
		case err != nil:
			http.Error(w, "other: "+err.Error(), http.StatusInternalServerError)
		default:
			io.WriteString(w, tok)
		}
	}
	ta.mux.Handle("/token", na.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := na.auth.Token(w, r)
		if err != nil {
			answer(w, "", err)
			return
		}
		answer(w, tok.AccessToken, nil)
	})))
	ta.mux.Handle("/refresh", na.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := na.auth.RefreshToken(w, r)
		if err != nil {
			answer(w, "", err)
			return
		}
		answer(w, tok.AccessToken, nil)
	})))
	ta.mux.Handle("/api", na.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := na.auth.Client(w, r)
		var req *http.Request
		switch r.URL.Query().Get("body") {
		case "":
			req, _ = http.NewRequestWithContext(r.Context(), http.MethodGet, na.rs.srv.URL, nil)
		case "replayable":
			req, _ = http.NewRequestWithContext(r.Context(), http.MethodPost, na.rs.srv.URL, strings.NewReader("payload"))
		case "stream":
			req, _ = http.NewRequestWithContext(r.Context(), http.MethodPost, na.rs.srv.URL, io.NopCloser(strings.NewReader("payload")))
		}
		resp, err := c.Do(req)
		if err != nil {
			answer(w, "", err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	})))
	jar, _ := cookiejar.New(nil)
	na.client = &http.Client{Jar: jar}
	if code, body := na.get(t, "/login"); code != http.StatusOK {
		t.Fatalf("login: %d %q", code, body)
	}
	return na
}

func (na *noExpiryApp) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := na.client.Get(na.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (na *noExpiryApp) mustToken(t *testing.T) string {
	t.Helper()
	code, tok := na.get(t, "/token")
	if code != http.StatusOK || tok == "" {
		t.Fatalf("/token: %d %q", code, tok)
	}
	return tok
}

func (na *noExpiryApp) refreshes(before int) int { return na.provider.TokenRequests() - before }

func TestRefreshTokenWithoutExpiresIn(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	first := na.mustToken(t)
	before := na.provider.TokenRequests()
	// Without expires_in, Token never counts the token as expired.
	if again := na.mustToken(t); again != first || na.refreshes(before) != 0 {
		t.Fatalf("Token refreshed a token of unknown expiry: %q (was %q), %d token requests", again, first, na.refreshes(before))
	}
	code, second := na.get(t, "/refresh")
	if code != http.StatusOK || second == first || second == "" {
		t.Fatalf("RefreshToken: %d %q, want a new access token (old %q)", code, second, first)
	}
	if n := na.refreshes(before); n != 1 {
		t.Errorf("RefreshToken made %d token requests, want 1", n)
	}
	if req, _ := na.provider.LastTokenRequest(); req.GrantType != "refresh_token" {
		t.Errorf("last grant %q, want refresh_token", req.GrantType)
	}
	// Written back: Token now returns the new token, and a second
	// RefreshToken spends the rotated refresh token (the old one is dead).
	if got := na.mustToken(t); got != second {
		t.Errorf("after RefreshToken, Token = %q, want %q", got, second)
	}
	if code, third := na.get(t, "/refresh"); code != http.StatusOK || third == second {
		t.Errorf("second RefreshToken: %d %q", code, third)
	}
}

func TestRefreshTokenRefusedEndsSession(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	na.provider.RevokeRefreshTokens("alice")
	na.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if code, body := na.get(t, "/refresh"); code != http.StatusUnauthorized {
		t.Fatalf("RefreshToken with a revoked refresh token: %d %q, want 401 (ErrLoginRequired)", code, body)
	}
	if code, _ := na.get(t, "/token"); code != http.StatusFound {
		t.Errorf("after invalid_grant the session still works: %d, want 302 to log in", code)
	}
}

func TestRefreshTokenWithoutSession(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	_, err := na.auth.RefreshToken(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	var e *pipaauth.Error
	if !errors.Is(err, pipaauth.ErrLoginRequired) || !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
		t.Errorf("RefreshToken without a session: %v, want a 401 *Error wrapping ErrLoginRequired", err)
	}
}

func TestRefreshTokenNeedsKeepTokens(t *testing.T) {
	na := newNoExpiryApp(t, func(c *pipaauth.Config) { c.KeepTokens = false })
	if code, body := na.get(t, "/refresh"); code != http.StatusInternalServerError || !strings.Contains(body, "KeepTokens") {
		t.Errorf("RefreshToken without KeepTokens: %d %q, want ErrNoTokens", code, body)
	}
}

func TestClientRefreshesOnInvalidToken(t *testing.T) {
	for _, tc := range []struct {
		name, challenge string
	}{
		{"bearer", `Bearer realm="api", error="invalid_token", error_description="The access token expired"`},
		{"bearer lower case, no spaces", `bearer error=invalid_token`},
		{"dpop", `DPoP algs="ES256 PS256", error="invalid_token"`},
		{"second challenge", `Basic realm="x", Bearer error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			na := newNoExpiryApp(t, nil)
			na.rs.set(func(rs *resourceServer) { rs.challenge = tc.challenge })
			old := na.mustToken(t)
			na.rs.refuse(old)
			before := na.provider.TokenRequests()
			for _, body := range []string{"", "replayable"} {
				want := "ok "
				if body != "" {
					want += "payload"
				}
				code, got := na.get(t, "/api?body="+body)
				if code != http.StatusOK || got != want {
					t.Errorf("/api?body=%s: %d %q, want 200 from the retry", body, code, got)
				}
				// The second round shows the first wrote the new token back.
				na.rs.refuse(na.mustToken(t))
			}
			if n := na.refreshes(before); n != 2 {
				t.Errorf("%d refreshes for two refused tokens, want 2", n)
			}
			seen := na.rs.tokens()
			if len(seen) != 4 || seen[0] != old || seen[1] == old || seen[2] != seen[1] || seen[3] == seen[2] {
				t.Errorf("the resource server saw %q; want the refused token, the new one, then the same two steps again", seen)
			}
		})
	}
}

// Other 401s are not the token's fault: no refresh, no retry.
func TestClientOtherUnauthorizedNoRefresh(t *testing.T) {
	for _, challenge := range []string{
		"",
		`Bearer realm="api"`,
		`Bearer error="insufficient_scope", scope="admin"`,
		`Bearer error="invalid_request"`,
		`Basic error="invalid_token"`,
		`Bearer error_description="invalid_token"`,
		`Bearer error="invalid_token_x"`,
	} {
		t.Run(challenge, func(t *testing.T) {
			na := newNoExpiryApp(t, nil)
			na.rs.set(func(rs *resourceServer) { rs.challenge = challenge })
			old := na.mustToken(t)
			na.rs.refuse(old)
			before := na.provider.TokenRequests()
			if code, body := na.get(t, "/api"); code != http.StatusUnauthorized {
				t.Errorf("/api: %d %q, want the resource server's 401", code, body)
			}
			if n := na.refreshes(before); n != 0 {
				t.Errorf("%d refreshes after a 401 with WWW-Authenticate %q, want 0", n, challenge)
			}
			if seen := na.rs.tokens(); len(seen) != 1 {
				t.Errorf("the resource server got %d requests, want 1 (no retry)", len(seen))
			}
		})
	}
}

// A body that cannot be sent again: refresh, no retry, the 401 goes back,
// and the next request carries the new token.
func TestClientNonReplayableBody(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	old := na.mustToken(t)
	na.rs.refuse(old)
	before := na.provider.TokenRequests()
	if code, body := na.get(t, "/api?body=stream"); code != http.StatusUnauthorized || body != "refused" {
		t.Errorf("/api with a streamed body: %d %q, want the resource server's 401", code, body)
	}
	if n := na.refreshes(before); n != 1 {
		t.Errorf("%d refreshes, want 1 (the refresh happens, only the retry does not)", n)
	}
	if seen := na.rs.tokens(); len(seen) != 1 {
		t.Fatalf("the resource server got %d requests, want 1 (no retry)", len(seen))
	}
	if code, body := na.get(t, "/api?body=stream"); code != http.StatusOK || body != "ok payload" {
		t.Errorf("next request: %d %q, want 200", code, body)
	}
	if seen := na.rs.tokens(); len(seen) != 2 || seen[1] == old {
		t.Errorf("the resource server saw %q; the next request must carry the new token", seen)
	}
	if n := na.refreshes(before); n != 1 {
		t.Errorf("%d refreshes, want still 1", n)
	}
}

// A resource server that refuses every token: one refresh, one retry, and
// its 401 goes back; never a loop.
func TestClientRefreshesOnceNoLoop(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	na.rs.set(func(rs *resourceServer) { rs.refuseAll = true })
	before := na.provider.TokenRequests()
	if code, _ := na.get(t, "/api"); code != http.StatusUnauthorized {
		t.Errorf("/api: %d, want 401 from the retry", code)
	}
	if n := na.refreshes(before); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if seen := na.rs.tokens(); len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("the resource server saw %q, want two requests with two tokens", seen)
	}
}

// Two requests of one Client refused: the Client refreshes once.
func TestClientRefreshesOncePerClient(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	na.rs.set(func(rs *resourceServer) { rs.refuseAll = true })
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range na.client.Jar.Cookies(mustURL(t, na.srv.URL)) {
		r.AddCookie(c)
	}
	c := na.auth.Client(w, r)
	before := na.provider.TokenRequests()
	for range 3 {
		resp, err := c.Get(na.rs.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Past the time a refresh is remembered: a second forced refresh
		// would spend the rotated refresh token again and end the session.
		na.offset.Add(int64(5 * time.Minute))
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	}
	if n := na.refreshes(before); n != 1 {
		t.Errorf("one Client made %d refreshes, want 1", n)
	}
}

func TestClientRefreshRefusedEndsSession(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	na.rs.refuse(na.mustToken(t))
	na.provider.RevokeRefreshTokens("alice")
	na.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if code, body := na.get(t, "/api"); code != http.StatusUnauthorized || body != "login required\n" {
		t.Errorf("/api with a refresh refused: %d %q, want the ErrLoginRequired error", code, body)
	}
	if code, _ := na.get(t, "/token"); code != http.StatusFound {
		t.Errorf("after invalid_grant the session still works: %d, want 302 to log in", code)
	}
}

// Parallel requests of one session, all refused with the same token, share
// one refresh.
func TestClientConcurrentRefusalsShareRefresh(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	na.rs.refuse(na.mustToken(t))
	req, _ := http.NewRequest("GET", na.srv.URL+"/api", nil)
	for _, c := range na.client.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	cookie := req.Header.Get("Cookie")
	before := na.provider.TokenRequests()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r, _ := http.NewRequest("GET", na.srv.URL+"/api", nil)
			r.Header.Set("Cookie", cookie)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("request %d: %d %q", i, resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	if n := na.refreshes(before); n != 1 {
		t.Errorf("8 concurrent refusals made %d refreshes, want 1", n)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A provider that does not rotate refresh tokens: a second RefreshToken
// within the time a refresh is remembered must still get a new access
// token, not the remembered answer that holds the one being replaced.
func TestRefreshTokenWithoutRotation(t *testing.T) {
	na := newNoExpiryApp(t, nil)
	na.provider.SetBehavior(pipatest.Behavior{TokenHook: func(resp map[string]any) {
		delete(resp, "expires_in")
		delete(resp, "refresh_token") // x/oauth2 keeps the one it sent
	}})
	first := na.mustToken(t)
	_, second := na.get(t, "/refresh")
	_, third := na.get(t, "/refresh")
	if second == first || third == second || third == "" {
		t.Errorf("access tokens %q, %q, %q: each RefreshToken must bring a new one", first, second, third)
	}
}
