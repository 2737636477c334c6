package pipaauth_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/internal/apptest"
	"github.com/pipaauth/pipaauth/pipatest"
)

// The one test application of this package's tests: testApp, an
// application server with its Auth, which the full-flow harness
// (harness_test.go) and tokenApp build on. It is internal/apptest's App,
// which the e2e module's tests share, under the names these tests use.

// testApp is an application on a loopback server whose Auth logs in with a
// pipatest provider. Tests mount their routes on mux.
type testApp struct {
	srv  *httptest.Server
	mux  *http.ServeMux
	auth *pipaauth.Auth
}

// newTestApp starts a testApp, closed when tb ends, with apptest.New: a TLS
// server when the provider is one, else a plain-HTTP one with
// InsecureAllowHTTP; pipatest's default client, fresh session keys,
// RedirectURL srv.URL+"/callback", logs discarded; edit, when not nil,
// changes the Config before New.
func newTestApp(tb testing.TB, provider *pipatest.Server, edit func(*pipaauth.Config)) *testApp {
	tb.Helper()
	a := apptest.New(tb, provider, edit)
	return &testApp{srv: a.Srv, mux: a.Mux, auth: a.Auth}
}

// tokenApp is a testApp logged in as alice through its provider, whose
// /token route answers with the access token Token returns (or a status
// naming the error) and whose /userinfo route calls the provider through
// Client. Its clock runs offset ahead of the real time.
type tokenApp struct {
	provider *pipatest.Server
	app      *httptest.Server
	auth     *pipaauth.Auth
	offset   atomic.Int64 // nanoseconds added to the application's clock
	jar      http.CookieJar
	client   *http.Client // follows redirects
	noFollow *http.Client // the same jar; does not follow redirects
}

// newTokenApp starts a tokenApp with KeepTokens set to keep and logs in.
// edit, when not nil, changes the Config last; beforeLogin, when not nil,
// sets the provider up before the login. It fails t unless the login
// succeeded (/token answers 200 with KeepTokens, 409 without).
func newTokenApp(t *testing.T, keep bool, edit func(*pipaauth.Config), beforeLogin func(*pipatest.Server)) *tokenApp {
	t.Helper()
	ta := &tokenApp{provider: pipatest.NewServer()}
	t.Cleanup(ta.provider.Close)
	// One clock for both: a refreshed ID token's exp and iat are checked.
	ta.provider.SetClock(func() time.Time { return time.Now().Add(time.Duration(ta.offset.Load())) })
	if beforeLogin != nil {
		beforeLogin(ta.provider)
	}
	pa := newTestApp(t, ta.provider, func(c *pipaauth.Config) {
		c.KeepTokens = keep
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ta.offset.Load())) }
		if edit != nil {
			edit(c)
		}
	})
	ta.app, ta.auth = pa.srv, pa.auth
	mux := pa.mux
	mux.Handle("/login", ta.auth.LoginHandler())
	mux.Handle("/callback", ta.auth.CallbackHandler())
	mux.Handle("/token", ta.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := ta.auth.Token(w, r)
		switch {
		case errors.Is(err, pipaauth.ErrNoTokens):
			http.Error(w, "no tokens", http.StatusConflict)
		case errors.Is(err, pipaauth.ErrLoginRequired):
			http.Error(w, "login required", http.StatusUnauthorized)
		case errors.Is(err, pipaauth.ErrExchange), errors.Is(err, pipaauth.ErrInvalidToken):
			http.Error(w, "provider failed", http.StatusBadGateway)
		case err != nil:
			http.Error(w, "other: "+err.Error(), http.StatusInternalServerError)
		default:
			io.WriteString(w, tok.AccessToken)
		}
	})))
	mux.Handle("/userinfo", ta.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := ta.auth.Client(w, r).Get(ta.provider.URL + "/userinfo")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})))
	ta.jar, _ = cookiejar.New(nil)
	ta.client = &http.Client{Jar: ta.jar}
	ta.noFollow = &http.Client{Jar: ta.jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ta.get(t, "/login")         // log in through the provider
	want := http.StatusConflict // logged in, without tokens (ErrNoTokens)
	if keep {
		want = http.StatusOK
	}
	if code, body := ta.token(t); code != want {
		t.Fatalf("after login, /token: %d %q, want %d", code, body, want)
	}
	return ta
}

// get fetches path, following redirects.
func (ta *tokenApp) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := ta.client.Get(ta.app.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// token fetches /token without following redirects: the status and the
// body without its trailing newline.
func (ta *tokenApp) token(t *testing.T) (int, string) {
	t.Helper()
	resp, err := ta.noFollow.Get(ta.app.URL + "/token")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (ta *tokenApp) advance(d time.Duration) { ta.offset.Add(int64(d)) }
