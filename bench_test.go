package pipaauth_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// benchBody is what the benchmarked handler writes, on both routes.
var benchBody = []byte("hello\n")

// benchEmail is the benchmarks' user's email: 30 characters, as real ones.
const benchEmail = "alice.example.user@example.com"

// benchEnv is an Auth built against a pipatest provider, with an application
// server on loopback mounting its login and callback handlers, and the
// session cookie of a user (alice) who logged in through the real flow,
// with a session shaped like a real one: a 30-character email, a sid, and
// an ID token of 1.6 KB (as Keycloak or Entra ID issue with profile claims
// and groups), which lives in its cookie at LogoutPath.
type benchEnv struct {
	provider *pipatest.Server
	app      *httptest.Server
	auth     *pipaauth.Auth
	cookie   *http.Cookie // alice's session
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	provider := pipatest.NewServer()
	b.Cleanup(provider.Close)
	provider.SetUser(pipatest.User{Name: "alice", Email: benchEmail, EmailVerified: true, ShareEmail: true})
	provider.SetBehavior(pipatest.Behavior{ClaimsHook: padIDToken(1600)})
	pa := newTestApp(b, provider, nil)
	app, mux, auth := pa.srv, pa.mux, pa.auth
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, u.Email)
	})))

	// Log in like a browser: / → /login → provider → /callback → /.
	jar, err := cookiejar.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(app.URL + "/")
	if err != nil {
		b.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(got) != benchEmail {
		b.Fatalf("login through the flow: %d %q, want 200 %s", resp.StatusCode, got, benchEmail)
	}
	appURL, _ := url.Parse(app.URL)
	for _, c := range jar.Cookies(appURL) {
		if c.Name == plainCookieName {
			return &benchEnv{provider: provider, app: app, auth: auth, cookie: c}
		}
	}
	b.Fatalf("no %s cookie after the login; the jar holds %v", plainCookieName, jar.Cookies(appURL))
	return nil
}

// BenchmarkRequireLogin measures a request of a logged-in user through the
// facade's guard (cookie session, default verified-value cache) against the
// same handler unwrapped, served in-process (no network). The handler
// writes the same small body on both; the guarded run fails unless its last
// request reached the handler with alice in the context, so it cannot
// silently measure a redirect to the login.
func BenchmarkRequireLogin(b *testing.B) {
	env := newBenchEnv(b)
	var seen pipaauth.User // the user the handler saw last
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = pipaauth.UserFromContext(r.Context())
		w.WriteHeader(http.StatusOK)
		w.Write(benchBody)
	})

	run := func(b *testing.B, h http.Handler, wantEmail string, extra ...string) {
		r := httptest.NewRequest("GET", "/private", nil)
		r.Header.Set("Cookie", strings.Join(append(extra, env.cookie.Name+"="+env.cookie.Value), "; ")) // on both: same request parsing
		w := &benchWriter{h: http.Header{}}
		seen = pipaauth.User{}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
		}
		if w.code != http.StatusOK || seen.Email != wantEmail {
			b.Fatalf("last request: status %d, user %q; want 200 and user %q (Location %q)", w.code, seen.Email, wantEmail, w.h.Get("Location"))
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, handler, "") })
	b.Run("guarded", func(b *testing.B) { run(b, env.auth.RequireLogin(handler), benchEmail) })
	// The same with four login attempt cookies in the request, before the
	// session cookie (tabs whose logins are still pending): the guard skips
	// them unread.
	attempts := make([]string, pipaauth.MaxPendingLogins)
	for i := range attempts {
		attempts[i] = fmt.Sprintf("%s-login-%016d=%s", plainCookieName, i, strings.Repeat("A", 400))
	}
	b.Run("guarded-with-attempt-cookies", func(b *testing.B) {
		run(b, env.auth.RequireLogin(handler), benchEmail, attempts...)
	})
}

// BenchmarkCallback times a whole login per iteration, for orientation: the
// login handler (new attempt, sealed state cookie, authorize URL), the
// provider's authorize endpoint over loopback HTTP (auto-approved, answers
// with a code), and the callback handler (state check, code exchange with
// the provider over loopback HTTP, ID token verification, new session
// cookie). It includes the provider's own work (notably signing the ID
// token with RSA-2048) and two loopback round trips, so it is an upper
// bound on pipaauth's share; the JWKS is fetched once and cached by go-oidc.
// pipatest keeps every redeemed code, so the provider slows down very
// slightly as iterations accumulate.
func BenchmarkCallback(b *testing.B) {
	env := newBenchEnv(b)
	login, callback := env.auth.LoginHandler(), env.auth.CallbackHandler()
	provider := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	b.ReportAllocs()
	for b.Loop() {
		// 1. Start: state cookie and authorize URL.
		rec := httptest.NewRecorder()
		login.ServeHTTP(rec, httptest.NewRequest("GET", env.app.URL+"/login?return_to=%2Fhello", nil))
		res := rec.Result()
		if res.StatusCode != http.StatusFound || len(res.Cookies()) != 1 {
			b.Fatalf("login: status %d, %d cookies; want 302 and a state cookie", res.StatusCode, len(res.Cookies()))
		}
		state := res.Cookies()[0]

		// 2. The provider approves and redirects back with a code.
		resp, err := provider.Get(res.Header.Get("Location"))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		back := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.Contains(back, "code=") {
			b.Fatalf("authorize: status %d, Location %q; want 302 with a code", resp.StatusCode, back)
		}

		// 3. The callback: exchange, verification, session.
		req := httptest.NewRequest("GET", back, nil)
		req.AddCookie(state)
		rec = httptest.NewRecorder()
		callback.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/hello" {
			b.Fatalf("callback: status %d, Location %q, body %q; want 303 to /hello", rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	}
}

// benchWriter is a ResponseWriter that keeps only the status: reused across
// iterations, it allocates nothing itself.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
