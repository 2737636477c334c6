package pipaauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// The high-assurance features (private_key_jwt, pushed authorization
// requests, DPoP) against pipatest, through the public API.

const faClientID = "fapi-client"

// faKey returns a fresh assertion key of the named kind: "es256" (P-256)
// or "rsa" (2048 bits).
func faKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "es256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// faApp is an application logged in (or not yet) at a pipatest provider
// that knows faClientID by its public key only.
type faApp struct {
	provider *pipatest.Server
	app      *testApp
	offset   atomic.Int64
	client   *http.Client // follows redirects, keeps cookies
	noFollow *http.Client
	logs     *syncBuffer // the Auth's log
}

type faOptions struct {
	key     string // "es256" (default) or "rsa"
	profile pipatest.Profile
	store   func() *memStore
	edit    func(*pipaauth.Config)
	before  func(*pipatest.Server)
}

func newFAApp(t *testing.T, o faOptions) *faApp {
	t.Helper()
	if o.key == "" {
		o.key = "es256"
	}
	fa := &faApp{provider: pipatest.NewServer(), logs: &syncBuffer{}}
	t.Cleanup(fa.provider.Close)
	key := faKey(t, o.key)
	fa.provider.RegisterClient(pipatest.Client{ID: faClientID, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1"}}}})
	fa.provider.SetProfile(o.profile)
	fa.provider.SetClock(func() time.Time { return time.Now().Add(time.Duration(fa.offset.Load())) })
	if o.before != nil {
		o.before(fa.provider)
	}
	fa.app = newTestApp(t, fa.provider, func(c *pipaauth.Config) {
		c.ClientID, c.ClientSecret = faClientID, ""
		c.ClientAssertionKey, c.ClientAssertionKeyID = key, "k1"
		c.PushedAuthorization, c.DPoP, c.KeepTokens = true, true, true
		c.Now = func() time.Time { return time.Now().Add(time.Duration(fa.offset.Load())) }
		c.Logger = slog.New(slog.NewTextHandler(fa.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if o.store != nil {
			c.SessionStore = o.store()
		}
		if o.edit != nil {
			o.edit(c)
		}
	})
	a, mux := fa.app.auth, fa.app.mux
	mux.Handle("/login", a.LoginHandler())
	mux.Handle("/callback", a.CallbackHandler())
	mux.Handle("/logout", a.LogoutHandler())
	mux.Handle("/token", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := a.Token(w, r)
		switch {
		case errors.Is(err, pipaauth.ErrNoTokens):
			http.Error(w, "no tokens: "+err.Error(), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "%s %s", tok.TokenType, tok.AccessToken)
	})))
	mux.Handle("/userinfo", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := a.Client(w, r).Get(fa.provider.URL + "/userinfo")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})))
	jar, _ := cookiejar.New(nil)
	fa.client = &http.Client{Jar: jar}
	fa.noFollow = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return fa
}

func (fa *faApp) get(t *testing.T, c *http.Client, path string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fa.app.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

// login logs in through the provider and fails t unless /token then
// answers a DPoP token.
func (fa *faApp) login(t *testing.T) string {
	t.Helper()
	if code, body, _ := fa.get(t, fa.client, "/login"); code != http.StatusNotFound && code != http.StatusOK {
		t.Fatalf("login: %d %q", code, body)
	}
	code, body, _ := fa.get(t, fa.noFollow, "/token")
	if code != http.StatusOK || !strings.HasPrefix(body, "DPoP ") {
		t.Fatalf("after login, /token: %d %q, want 200 DPoP <token>", code, body)
	}
	return strings.TrimPrefix(body, "DPoP ")
}

func TestHighAssuranceFlow(t *testing.T) {
	strict := pipatest.Profile{RequirePushedAuthorization: true, RequireDPoP: true, DPoPNonce: true, PrivateKeyJWTOnly: true}
	for _, m := range modes {
		for _, key := range []string{"es256", "rsa"} {
			t.Run(m.name+"/"+key, func(t *testing.T) {
				fa := newFAApp(t, faOptions{key: key, profile: strict, store: m.store})
				fa.provider.SetAccessTokenLifetime(time.Minute)
				at := fa.login(t)
				if n := fa.provider.PushedRequests(); n != 1 {
					t.Errorf("pushed requests: %d, want 1", n)
				}
				tr, _ := fa.provider.LastTokenRequest()
				if tr.ClientAuth != "private_key_jwt" || !tr.DPoP || tr.GrantType != "authorization_code" {
					t.Errorf("token request: %+v, want private_key_jwt with DPoP", tr)
				}

				// A DPoP userinfo call through Client, answering a new nonce
				// challenge once.
				fa.provider.RotateDPoPNonce()
				code, body, _ := fa.get(t, fa.noFollow, "/userinfo")
				if code != http.StatusOK || !strings.Contains(body, "alice@example.com") {
					t.Fatalf("/userinfo through Client: %d %q", code, body)
				}

				// Refresh: proven with the same key, the token endpoint's
				// nonce challenge answered.
				fa.provider.RotateDPoPNonce()
				fa.offset.Add(int64(2 * time.Minute))
				code, body, _ = fa.get(t, fa.noFollow, "/token")
				if code != http.StatusOK || !strings.HasPrefix(body, "DPoP ") || strings.TrimPrefix(body, "DPoP ") == at {
					t.Fatalf("after expiry, /token: %d %q, want a new DPoP token", code, body)
				}
				tr, _ = fa.provider.LastTokenRequest()
				if tr.GrantType != "refresh_token" || tr.ClientAuth != "private_key_jwt" || !tr.DPoP {
					t.Errorf("refresh request: %+v", tr)
				}
				if code, body, _ := fa.get(t, fa.noFollow, "/userinfo"); code != http.StatusOK {
					t.Fatalf("/userinfo after refresh: %d %q", code, body)
				}

				// Logout revokes with private_key_jwt and a proof.
				req, _ := http.NewRequest(http.MethodPost, fa.app.srv.URL+"/logout", nil)
				req.Header.Set("Origin", fa.app.srv.URL)
				resp, err := fa.noFollow.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				revs := fa.provider.Revocations()
				if len(revs) != 1 || revs[0].ClientAuth != "private_key_jwt" || !revs[0].DPoP || revs[0].Kind != "refresh_token" {
					t.Errorf("revocations: %+v, want one refresh_token revocation with private_key_jwt and DPoP", revs)
				}
				if code, _, _ := fa.get(t, fa.noFollow, "/token"); code != http.StatusFound {
					t.Errorf("after logout, /token: %d, want 302 to the login", code)
				}
				// No JWT (assertion, proof, ID token) and no token in the log.
				if logs := fa.logs.String(); strings.Contains(logs, "eyJ") || strings.Contains(logs, at) {
					t.Errorf("the log holds a JWT or a token:\n%s", logs)
				}
			})
		}
	}
}

// The login's UserInfo request (the ID token has no email) goes the DPoP
// way too.
func TestDPoPUserInfoAtLogin(t *testing.T) {
	fa := newFAApp(t, faOptions{profile: pipatest.Profile{RequireDPoP: true, DPoPNonce: true}, before: func(s *pipatest.Server) {
		s.SetBehavior(pipatest.Behavior{EmailOnlyAtUserInfo: true})
	}})
	fa.login(t)
	fa.app.mux.Handle("/me", fa.app.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, u.Email)
	})))
	if code, body, _ := fa.get(t, fa.noFollow, "/me"); code != http.StatusOK || body != "alice@example.com" {
		t.Errorf("/me: %d %q, want the email from UserInfo", code, body)
	}
}

// The browser's trip to PiPA carries client_id and request_uri only, and
// every tab pushes its own request.
func TestPushedAuthorizationRedirect(t *testing.T) {
	fa := newFAApp(t, faOptions{profile: pipatest.Profile{RequirePushedAuthorization: true}, edit: func(c *pipaauth.Config) { c.PushedAuthorization = false }})
	var locs []string
	for range 2 {
		code, _, h := fa.get(t, fa.noFollow, "/login")
		if code != http.StatusFound {
			t.Fatalf("login start: %d, want 302", code)
		}
		locs = append(locs, h.Get("Location"))
	}
	if n := fa.provider.PushedRequests(); n != 2 {
		t.Errorf("two starts pushed %d requests, want 2", n)
	}
	for _, loc := range locs {
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if len(q) != 2 || q.Get("client_id") != faClientID || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
			t.Errorf("authorization URL query %v, want client_id and request_uri only", q)
		}
	}
	if locs[0] == locs[1] {
		t.Error("two tabs got the same request_uri")
	}
	// Both tabs finish, in reverse order.
	for i := len(locs) - 1; i >= 0; i-- {
		resp, err := fa.client.Get(locs[i])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound { // "/" is not mounted: the login landed there
			t.Errorf("tab %d: finished with %d, want the landing page (404)", i, resp.StatusCode)
		}
	}
	if code, body, _ := fa.get(t, fa.noFollow, "/token"); code != http.StatusOK {
		t.Errorf("/token: %d %q", code, body)
	}
}

// A push PiPA refuses or fails is an error page, never a redirect, and
// leaves no attempt cookie.
func TestPushedAuthorizationFailure(t *testing.T) {
	for _, tc := range []struct {
		status, want int
	}{
		{http.StatusInternalServerError, http.StatusBadGateway},
		{http.StatusBadRequest, http.StatusBadGateway},
		{http.StatusServiceUnavailable, http.StatusServiceUnavailable},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			fa := newFAApp(t, faOptions{})
			fa.provider.SetBehavior(pipatest.Behavior{PushStatus: tc.status})
			code, body, h := fa.get(t, fa.noFollow, "/login", "Accept", "application/json")
			if code != tc.want || h.Get("Location") != "" {
				t.Fatalf("login start: %d (Location %q), want %d and no redirect", code, h.Get("Location"), tc.want)
			}
			var e struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Message, "PiPA") {
				t.Errorf("body %q: want a JSON error with the reason", body)
			}
			if sc := h.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("a failed push set cookies %q", sc)
			}
		})
	}
}

// A token answer that is not DPoP-bound fails the login.
func TestDPoPTokenTypeRefused(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			fa := newFAApp(t, faOptions{store: m.store})
			fa.provider.SetBehavior(pipatest.Behavior{IgnoreDPoP: true})
			code, body, _ := fa.get(t, fa.client, "/login", "Accept", "application/json")
			if code != http.StatusBadRequest || !strings.Contains(body, "verification") {
				t.Fatalf("login with Bearer tokens: %d %q, want 400", code, body)
			}
			if code, _, _ := fa.get(t, fa.noFollow, "/token"); code != http.StatusFound {
				t.Errorf("/token after the failed login: %d, want 302 (not logged in)", code)
			}
		})
	}
}

// Without DPoP in the Config, tokens stay Bearer and Client sends them so.
func TestPrivateKeyJWTWithoutDPoP(t *testing.T) {
	fa := newFAApp(t, faOptions{profile: pipatest.Profile{PrivateKeyJWTOnly: true}, edit: func(c *pipaauth.Config) {
		c.DPoP, c.PushedAuthorization = false, false
		c.ClientSecret = "never-sent" // set, but the key wins
	}})
	fa.get(t, fa.client, "/login")
	code, body, _ := fa.get(t, fa.noFollow, "/token")
	if code != http.StatusOK || !strings.HasPrefix(body, "Bearer ") {
		t.Fatalf("/token: %d %q, want a Bearer token", code, body)
	}
	if tr, _ := fa.provider.LastTokenRequest(); tr.ClientAuth != "private_key_jwt" || tr.DPoP {
		t.Errorf("token request %+v, want private_key_jwt only, no DPoP", tr)
	}
	if n := fa.provider.PushedRequests(); n != 0 {
		t.Errorf("%d pushed requests without PushedAuthorization", n)
	}
	if code, body, _ := fa.get(t, fa.noFollow, "/userinfo"); code != http.StatusOK {
		t.Errorf("/userinfo: %d %q", code, body)
	}
}

func TestHighAssuranceConfigErrors(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	es := faKey(t, "es256")
	for _, tc := range []struct {
		name   string
		edit   func(*pipaauth.Config)
		doc    func(map[string]any)
		want   error
		substr string
	}{
		{"no private_key_jwt", func(c *pipaauth.Config) { c.ClientAssertionKey = es }, func(d map[string]any) {
			d["token_endpoint_auth_methods_supported"] = []string{"client_secret_post"}
		}, pipaauth.ErrConfig, "does not list private_key_jwt"},
		{"alg not listed", func(c *pipaauth.Config) { c.ClientAssertionKey = es }, func(d map[string]any) {
			d["token_endpoint_auth_signing_alg_values_supported"] = []string{"PS256"}
		}, pipaauth.ErrConfig, "ES256"},
		{"only private_key_jwt, no key", nil, func(d map[string]any) {
			d["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
		}, pipaauth.ErrConfig, "set ClientAssertionKey"},
		{"no PAR endpoint", func(c *pipaauth.Config) { c.PushedAuthorization = true }, func(d map[string]any) {
			delete(d, "pushed_authorization_request_endpoint")
		}, pipaauth.ErrConfig, "unset PushedAuthorization"},
		{"PAR required without endpoint", nil, func(d map[string]any) {
			delete(d, "pushed_authorization_request_endpoint")
			d["require_pushed_authorization_requests"] = true
		}, pipaauth.ErrDiscovery, "pushed_authorization_request_endpoint"},
		{"DPoP without ES256", func(c *pipaauth.Config) { c.DPoP = true }, func(d map[string]any) {
			d["dpop_signing_alg_values_supported"] = []string{"EdDSA"}
		}, pipaauth.ErrConfig, "unset DPoP"},
		{"P-384 key", func(c *pipaauth.Config) { c.ClientAssertionKey = p384 }, nil, pipaauth.ErrConfig, "P-256"},
		{"1024-bit RSA key", func(c *pipaauth.Config) { c.ClientAssertionKey = rsa1024 }, nil, pipaauth.ErrConfig, "2048"},
		{"nil ECDSA key", func(c *pipaauth.Config) { c.ClientAssertionKey = (*ecdsa.PrivateKey)(nil) }, nil, pipaauth.ErrConfig, "nil *ecdsa.PrivateKey"},
		{"nil RSA key", func(c *pipaauth.Config) { c.ClientAssertionKey = (*rsa.PrivateKey)(nil) }, nil, pipaauth.ErrConfig, "nil *rsa.PrivateKey"},
		{"Ed25519 key", func(c *pipaauth.Config) { _, k, _ := ed25519.GenerateKey(nil); c.ClientAssertionKey = k }, nil, pipaauth.ErrConfig, "ed25519.PrivateKey"},
		{"key id without key", func(c *pipaauth.Config) { c.ClientAssertionKeyID = "k1" }, nil, pipaauth.ErrConfig, "ClientAssertionKeyID"},
		{"no secret, no key", func(c *pipaauth.Config) { c.ClientSecret = "" }, nil, pipaauth.ErrConfig, "ClientSecret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			provider.SetBehavior(pipatest.Behavior{DiscoveryHook: tc.doc})
			cfg := pipaauth.Config{
				Issuer: provider.URL, ClientID: pipatest.DefaultClientID, ClientSecret: pipatest.DefaultClientSecret,
				RedirectURL: "http://127.0.0.1/callback", SessionKeys: newKeys(), InsecureAllowHTTP: true,
				Logger: slog.New(slog.DiscardHandler),
			}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			_, err := pipaauth.New(t.Context(), cfg)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.substr) {
				t.Errorf("New: %v, want an error wrapping %v that mentions %q", err, tc.want, tc.substr)
			}
		})
	}
}

// With LazyDiscovery the document gets the same checks when it arrives: a
// document without private_key_jwt is never applied, and logins answer 503.
func TestHighAssuranceLazyDiscoveryChecks(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	provider.SetBehavior(pipatest.Behavior{DiscoveryHook: func(d map[string]any) {
		d["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
	}})
	app := newTestApp(t, provider, func(c *pipaauth.Config) {
		c.LazyDiscovery = true
		c.ClientAssertionKey = faKey(t, "es256")
	})
	app.mux.Handle("/login", app.auth.LoginHandler())
	resp, err := app.srv.Client().Get(app.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login start with a document lacking private_key_jwt: %d, want 503", resp.StatusCode)
	}
}

// A DPoP-bound session without its key has no usable tokens, and stays.
func TestDPoPSessionWithoutKey(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			fa := newFAApp(t, faOptions{store: m.store})
			fa.login(t)
			dropDPoPKey(t, fa)
			code, body, _ := fa.get(t, fa.noFollow, "/token")
			if code != http.StatusConflict || !strings.Contains(body, "DPoP key") {
				t.Fatalf("/token without the key: %d %q, want 409 (ErrNoTokens) naming the DPoP key", code, body)
			}
			if code, _, _ := fa.get(t, fa.noFollow, "/token"); code != http.StatusConflict {
				t.Errorf("the user was logged out: /token %d", code)
			}
		})
	}
}

// dropDPoPKey rewrites the session of fa's browser without its DPoP key.
func dropDPoPKey(t *testing.T, fa *faApp) {
	t.Helper()
	fa.app.mux.Handle("/dropkey", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := pipaauth.DropDPoPKey(fa.app.auth, w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	if code, body, _ := fa.get(t, fa.noFollow, "/dropkey"); code != http.StatusOK {
		t.Fatalf("/dropkey: %d %q", code, body)
	}
}

// Client answers a resource server's use_dpop_nonce once, for requests
// whose body can be sent again only.
func TestDPoPClientNonceRetry(t *testing.T) {
	fa := newFAApp(t, faOptions{profile: pipatest.Profile{DPoPNonce: true}})
	var bodies atomic.Int64
	fa.app.mux.Handle("/post", fa.app.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = strings.NewReader("a=1") // http.NewRequest sets GetBody
		if r.URL.Query().Has("stream") {
			body = io.MultiReader(strings.NewReader("a=1")) // cannot be read twice
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, fa.provider.URL+"/userinfo", body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := fa.app.auth.Client(w, r).Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		bodies.Add(1)
		w.Header().Set("X-Challenge", resp.Header.Get("WWW-Authenticate"))
		w.WriteHeader(resp.StatusCode)
	})))
	fa.login(t)
	fa.provider.RotateDPoPNonce()
	if code, _, h := fa.get(t, fa.noFollow, "/post"); code != http.StatusOK {
		t.Errorf("replayable POST after a new nonce: %d %q, want 200 after one retry", code, h.Get("X-Challenge"))
	}
	fa.provider.RotateDPoPNonce()
	code, _, h := fa.get(t, fa.noFollow, "/post?stream=1")
	if code != http.StatusUnauthorized || !strings.Contains(h.Get("X-Challenge"), "use_dpop_nonce") {
		t.Errorf("streamed POST after a new nonce: %d %q, want the 401 challenge handed back", code, h.Get("X-Challenge"))
	}
	// The challenge taught the nonce: the next request passes at once.
	if code, _, _ := fa.get(t, fa.noFollow, "/post?stream=1"); code != http.StatusOK {
		t.Errorf("streamed POST with the learnt nonce: %d, want 200", code)
	}
}

// Pushed authorization with a client secret, in either style, and a PAR
// endpoint that cannot be reached.
func TestPushedAuthorizationWithSecret(t *testing.T) {
	for _, methods := range [][]string{{"client_secret_post"}, {"client_secret_basic"}} {
		t.Run(methods[0], func(t *testing.T) {
			provider := pipatest.NewServer()
			t.Cleanup(provider.Close)
			provider.SetProfile(pipatest.Profile{RequirePushedAuthorization: true})
			provider.SetBehavior(pipatest.Behavior{DiscoveryHook: func(d map[string]any) { d["token_endpoint_auth_methods_supported"] = methods }})
			app := newTestApp(t, provider, func(c *pipaauth.Config) { c.PushedAuthorization = true })
			app.mux.Handle("/login", app.auth.LoginHandler())
			app.mux.Handle("/callback", app.auth.CallbackHandler())
			app.mux.Handle("/", app.auth.RequireLogin(http.HandlerFunc(echoUser)))
			jar, _ := cookiejar.New(nil)
			resp, err := (&http.Client{Jar: jar}).Get(app.srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || provider.PushedRequests() != 1 {
				t.Errorf("login: %d %q with %d pushed requests, want 200 after one push", resp.StatusCode, b, provider.PushedRequests())
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		fa := newFAApp(t, faOptions{before: func(s *pipatest.Server) {
			s.SetBehavior(pipatest.Behavior{DiscoveryHook: func(d map[string]any) {
				d["pushed_authorization_request_endpoint"] = "http://127.0.0.1:1/par"
			}})
		}})
		code, body, h := fa.get(t, fa.noFollow, "/login")
		if code != http.StatusServiceUnavailable || h.Get("Location") != "" || !strings.Contains(body, "could not be reached") {
			t.Errorf("push to a closed port: %d %q, want a 503 page", code, body)
		}
	})
}

// A refresh answered with a token_type other than DPoP ends the session: the
// tokens would no longer be bound.
func TestDPoPRefreshDowngradeRefused(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			fa := newFAApp(t, faOptions{store: m.store})
			fa.provider.SetAccessTokenLifetime(time.Minute)
			fa.login(t)
			fa.provider.SetBehavior(pipatest.Behavior{TokenHook: func(resp map[string]any) { resp["token_type"] = "Bearer" }})
			fa.offset.Add(int64(2 * time.Minute))
			code, body, _ := fa.get(t, fa.noFollow, "/token")
			if code != http.StatusBadGateway || !strings.Contains(body, "login required") || !strings.Contains(body, "not DPoP") {
				t.Fatalf("refresh answered with Bearer: %d %q, want ErrLoginRequired naming the token_type", code, body)
			}
			if code, _, _ := fa.get(t, fa.noFollow, "/token"); code != http.StatusFound {
				t.Errorf("after the refused refresh, /token: %d, want 302 (session ended)", code)
			}
		})
	}
}
