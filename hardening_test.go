package pipaauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Logins a cross-site page starts in the victim's browser (three top-level
// GETs of /login with long return paths) must not make the victim's own
// login fail when its tokens are large.
func TestForcedPendingLoginsDoNotBreakLogin(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	provider.SetBehavior(pipatest.Behavior{
		TokenHook:  func(resp map[string]any) { resp["access_token"] = strings.Repeat("A", 1400) },
		ClaimsHook: func(claims map[string]any) { delete(claims, "at_hash") },
	})
	pa := newTestApp(t, provider, func(c *pipaauth.Config) { c.KeepTokens = true })
	app, mux, auth := pa.srv, pa.mux, pa.auth
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/me", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, u.Email)
	})))
	jar, _ := cookiejar.New(nil)
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	long := "/" + strings.Repeat("p", 255)
	for range 3 { // the attacker's logins: started, never finished
		resp, err := noFollow.Get(app.URL + "/login?return_to=" + long)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := (&http.Client{Jar: jar}).Get(app.URL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "alice@example.com" {
		t.Fatalf("the victim's login: %d %q, want 200 alice@example.com", resp.StatusCode, body)
	}
}

// Client carries the user's access token; a redirect to another origin must
// not take it along.
func TestClientRefusesCrossOriginRedirect(t *testing.T) {
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
	}))
	t.Cleanup(other.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			http.Redirect(w, r, "/final", http.StatusFound)
			return
		}
		if r.URL.Path == "/final" {
			io.WriteString(w, "ok "+strings.Fields(r.Header.Get("Authorization") + " -")[0])
			return
		}
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	t.Cleanup(api.Close)
	ta := newTokenApp(t, true, nil, nil)
	call := func(path string) (string, error) {
		var out string
		var callErr error
		h := ta.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			resp, err := ta.auth.Client(w, r).Get(api.URL + path)
			if err != nil {
				callErr = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out = string(b)
		}))
		req := httptest.NewRequest("GET", ta.app.URL+"/x", nil)
		for _, c := range ta.jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		return out, callErr
	}
	if out, err := call("/same"); err != nil || out != "ok Bearer" {
		t.Errorf("same-origin redirect: %q, %v; want it followed with the token", out, err)
	}
	if _, err := call("/away"); err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Errorf("cross-origin redirect: %v, want a refusal", err)
	}
	if v, _ := leaked.Load().(string); v != "" {
		t.Errorf("the other origin received Authorization %q", v)
	}
}

// Without the openid scope there is no nonce; without PKCE nothing else
// binds a code to its login. New refuses that combination.
func TestNewRefusesUnboundCodes(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	provider.SetBehavior(pipatest.Behavior{DiscoveryHook: func(doc map[string]any) { delete(doc, "code_challenge_methods_supported") }})
	cfg := pipaauth.Config{
		Issuer: provider.URL, ClientID: pipatest.DefaultClientID, ClientSecret: pipatest.DefaultClientSecret,
		RedirectURL:       "http://127.0.0.1:1/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true,
		Scopes:            []string{"email"},
	}
	if _, err := pipaauth.New(context.Background(), cfg); !errors.Is(err, pipaauth.ErrConfig) || !strings.Contains(err.Error(), "openid") {
		t.Errorf("New without PKCE and without openid: %v, want ErrConfig naming openid", err)
	}
	cfg.Scopes = []string{"openid"}
	if _, err := pipaauth.New(context.Background(), cfg); err != nil {
		t.Errorf("New without PKCE but with openid (the nonce binds): %v", err)
	}
}

// failingStore is a gorilla store whose backend is down.
type failingStore struct{}

func (failingStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return nil, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}
func (s failingStore) New(r *http.Request, name string) (*sessions.Session, error) {
	return s.Get(r, name)
}
func (failingStore) Save(*http.Request, http.ResponseWriter, *sessions.Session) error {
	return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// With the store down, every handler that needs the store answers 503,
// never 500 or a redirect to PiPA for a user who holds a session cookie.
// Starting a login needs no store: it writes only the attempt cookie.
func TestStoreDownIs503(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	auth := newTestApp(t, provider, func(c *pipaauth.Config) { c.SessionStore = failingStore{} }).auth
	for _, tt := range []struct {
		name string
		h    http.Handler
		req  *http.Request
		want int
	}{
		{"login", auth.LoginHandler(), httptest.NewRequest("GET", "/login", nil), http.StatusFound},
		{"callback", auth.CallbackHandler(), httptest.NewRequest("GET", "/callback?state=s&code=c", nil), http.StatusServiceUnavailable},
		{"protected", auth.RequireLogin(http.NotFoundHandler()), httptest.NewRequest("GET", "/private", nil), http.StatusServiceUnavailable},
		{"logout", auth.LogoutHandler(), httptest.NewRequest("POST", "/logout", nil), http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.AddCookie(&http.Cookie{Name: plainCookieName, Value: "some-session-id"})
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, tt.req)
			if rec.Code != tt.want {
				t.Errorf("got %d (Location %q), want %d", rec.Code, rec.Header().Get("Location"), tt.want)
			}
			if strings.Contains(rec.Body.String(), "connection refused") {
				t.Errorf("the page shows the store's error: %q", rec.Body.String())
			}
		})
	}
}
