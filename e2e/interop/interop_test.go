// Package interop tests pipaauth against real providers: panva's
// oidc-provider (from npm, pinned by oidcprovider/package-lock.json) as a
// FAPI 2.0 provider.
package interop

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/e2e/internal/e2etest"
)

const clientID = "pipaauth-interop"

// startOIDCProvider runs oidcprovider/server.mjs with node (installing its
// locked dependencies with npm ci first when node_modules is missing) and
// returns its issuer URL. It skips t when node is not installed.
func startOIDCProvider(t *testing.T, clientJWK []byte, redirectURI, postLogoutURI string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil && os.Getenv("PIPAAUTH_REQUIRE_NODE") != "" {
		t.Fatal("node is not installed, and PIPAAUTH_REQUIRE_NODE is set: install Node.js 20.19 or later and npm")
	}
	if err != nil {
		t.Skip("node is not installed: skipping the interop test against panva's oidc-provider (install Node.js 20.19 or later and npm)")
	}
	dir, err := filepath.Abs("oidcprovider")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("node is installed but npm is not: install npm to run the interop test (npm ci in %s)", dir)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CLIENT_ID="+clientID, "CLIENT_JWK="+string(clientJWK),
		"REDIRECT_URI="+redirectURI, "POST_LOGOUT_URI="+postLogoutURI)
	dieWithTest(cmd)
	stdin, err := cmd.StdinPipe() // closed at cleanup: the server exits
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr e2etest.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill() // our own child, by its pid
			<-exited
		}
		if t.Failed() {
			t.Logf("oidc-provider's stderr:\n%s", stderr.String())
		}
	})
	issuer := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "issuer "); ok {
				issuer <- u
			}
		}
	}()
	select {
	case u := <-issuer:
		return u
	case <-exited:
		t.Fatalf("oidc-provider exited at start: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("oidc-provider did not start in 30s: %s", stderr.String())
	}
	return ""
}

// TestOIDCProviderFAPI2 logs in, reads the token, refreshes it, calls
// UserInfo through Client with DPoP and logs out at panva's oidc-provider
// configured with its FAPI 2.0 profile: pushed authorization requests
// required, private_key_jwt only, DPoP-bound tokens with server nonces.
func TestOIDCProviderFAPI2(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	issuer := startOIDCProvider(t, jwk, app.URL+"/callback", app.URL+"/bye")

	var logs e2etest.LogBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	auth, err := pipaauth.New(ctx, pipaauth.Config{
		Issuer:                issuer,
		ClientID:              clientID,
		ClientAssertionKey:    key,
		ClientAssertionKeyID:  "k1",
		DPoP:                  true,
		KeepTokens:            true,
		RedirectURL:           app.URL + "/callback",
		PostLogoutRedirectURL: app.URL + "/bye",
		SessionKeys:           e2etest.NewKeys(),
		InsecureAllowHTTP:     true,
		Logger:                slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("pipaauth.New against oidc-provider: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pipaauth's log:\n%s", logs.String())
		}
	})
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/logout", auth.LogoutHandler())
	mux.Handle("/bye", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "bye") }))
	mux.Handle("/token", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.Token(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "%s %s", tok.TokenType, tok.AccessToken)
	})))
	mux.Handle("/userinfo", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := auth.Client(w, r).Get(issuer + "/me")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})))
	mux.Handle("/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, "home "+u.ID)
	})))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	noFollow := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(c *http.Client, method, target string, form url.Values) (int, string, *http.Response) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, target, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if method == http.MethodPost && strings.HasPrefix(target, app.URL) {
			req.Header.Set("Origin", app.URL)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), resp
	}

	// The login start pushes the request: the browser's trip to the
	// provider carries client_id and request_uri only.
	code, _, resp := do(noFollow, http.MethodGet, app.URL+"/login", nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if code != http.StatusFound || loc == nil || len(loc.Query()) != 2 || loc.Query().Get("request_uri") == "" {
		t.Fatalf("login start: %d to %v, want 302 with client_id and request_uri only", code, loc)
	}
	code, body, _ := do(browser, http.MethodGet, loc.String(), nil)
	if code != http.StatusOK || body != "home alice" {
		t.Fatalf("login at oidc-provider: %d %q, want 200 \"home alice\"", code, body)
	}

	code, body, _ = do(noFollow, http.MethodGet, app.URL+"/token", nil)
	first, ok := strings.CutPrefix(body, "DPoP ")
	if code != http.StatusOK || !ok || first == "" {
		t.Fatalf("/token: %d %q, want a DPoP token", code, body)
	}
	checkUserInfo := func(when string) {
		t.Helper()
		code, body, _ := do(noFollow, http.MethodGet, app.URL+"/userinfo", nil)
		var info struct {
			Sub   string `json:"sub"`
			Email string `json:"email"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil || info.Sub != "alice" || info.Email != "alice@example.com" {
			t.Fatalf("%s: DPoP UserInfo through Client: %d %q", when, code, body)
		}
	}
	checkUserInfo("after login")

	// The access token lives 6 seconds: Token refreshes it once less than
	// a quarter of its lifetime is left.
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		code, body, _ = do(noFollow, http.MethodGet, app.URL+"/token", nil)
		next, ok := strings.CutPrefix(body, "DPoP ")
		if code != http.StatusOK || !ok {
			t.Fatalf("/token while refreshing: %d %q", code, body)
		}
		if next != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the access token was not refreshed within 20 seconds")
		}
	}
	checkUserInfo("after refresh")

	// Logout: the refresh token is revoked (with private_key_jwt and a
	// proof), then oidc-provider's end-session page confirms.
	code, _, resp = do(noFollow, http.MethodPost, app.URL+"/logout", url.Values{})
	end, _ := url.Parse(resp.Header.Get("Location"))
	if code != http.StatusSeeOther || end == nil || !strings.HasPrefix(end.String(), issuer) || end.Query().Get("id_token_hint") == "" {
		t.Fatalf("logout: %d to %v, want 303 to oidc-provider's end-session endpoint with id_token_hint", code, end)
	}
	if strings.Contains(logs.String(), "revocation") {
		t.Errorf("the revocation at logout did not succeed: %s", logs.String())
	}
	code, page, _ := do(browser, http.MethodGet, end.String(), nil)
	m := regexp.MustCompile(`<form[^>]*action="([^"]+)"[\s\S]*?name="xsrf" value="([^"]+)"`).FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("end-session page: %d, no confirmation form: %.300q", code, page)
	}
	action, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(issuer)
	code, body, _ = do(browser, http.MethodPost, base.ResolveReference(action).String(), url.Values{"xsrf": {html.UnescapeString(m[2])}, "logout": {"yes"}})
	if code != http.StatusOK || body != "bye" {
		t.Fatalf("end-session confirmation: %d %q, want the post-logout page", code, body)
	}
	if code, _, _ := do(noFollow, http.MethodGet, app.URL+"/token", nil); code != http.StatusFound {
		t.Errorf("after logout, /token: %d, want 302 to the login", code)
	}
}
