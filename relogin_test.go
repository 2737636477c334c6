package pipaauth_test

// A login that replaces a session with kept tokens revokes the tokens it
// replaces: otherwise a copy of the old cookie keeps refreshing after the
// user's logout, which revokes only the newest refresh token. (Found by the
// security review.)

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestReloginRevokesTheReplacedTokens(t *testing.T) {
	t.Parallel()
	for _, relogin := range []bool{false, true} {
		t.Run(map[bool]string{false: "login, logout", true: "login, login again, logout"}[relogin], func(t *testing.T) {
			t.Parallel()
			provider := pipatest.NewServer()
			t.Cleanup(provider.Close)
			provider.SetAccessTokenLifetime(5 * time.Minute)
			var offset atomic.Int64
			ta := newTestApp(t, provider, func(c *pipaauth.Config) {
				c.KeepTokens = true
				c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			})
			ta.mux.Handle("/login", ta.auth.LoginHandler())
			ta.mux.Handle("/callback", ta.auth.CallbackHandler())
			ta.mux.Handle("/logout", ta.auth.LogoutHandler())
			ta.mux.Handle("/token", ta.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tok, err := ta.auth.Token(w, r)
				switch {
				case errors.Is(err, pipaauth.ErrLoginRequired):
					http.Error(w, "login required", http.StatusUnauthorized)
				case err != nil:
					http.Error(w, err.Error(), http.StatusBadGateway)
				default:
					io.WriteString(w, tok.AccessToken)
				}
			})))
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			get := func(path string) int {
				resp, err := c.Get(ta.srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			get("/login")
			u, _ := url.Parse(ta.srv.URL)
			var stolen string // a copy of the session cookie after the first login (cookie mode)
			for _, ck := range jar.Cookies(u) {
				if ck.Name == plainCookieName {
					stolen = ck.Value
				}
			}
			if stolen == "" {
				t.Fatal("no session cookie")
			}
			if relogin {
				get("/login") // single sign-on: a new code, new tokens; the session is replaced
			}
			req, _ := http.NewRequest("POST", ta.srv.URL+"/logout", nil)
			req.Header.Set("Origin", ta.srv.URL)
			noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			t.Logf("logout: %d, revocations at PiPA: %d", resp.StatusCode, len(provider.Revocations()))

			// The thief's copy, once its access token is due.
			offset.Store(int64(10 * time.Minute))
			req, _ = http.NewRequest("GET", ta.srv.URL+"/token", nil)
			req.Header.Set("Cookie", plainCookieName+"="+stolen)
			req.Header.Set("Accept", "application/json")
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("after the user's logout, a copy of the first login's cookie still gets fresh access tokens (%d, %d bytes)", resp.StatusCode, len(strings.TrimSpace(string(body))))
			}
		})
	}
}
