package pipaauth_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// A LogoutHandler mounted away from Config.LogoutPath never gets the ID
// token cookie (cookie mode): the logout says so, once, instead of going
// without id_token_hint in silence.
func TestLogoutAwayFromLogoutPathWarns(t *testing.T) {
	for _, tc := range []struct {
		mount string
		warn  bool
	}{
		{"/logout", false},
		{"/signout", true},
	} {
		t.Run(tc.mount, func(t *testing.T) {
			provider := pipatest.NewServer()
			t.Cleanup(provider.Close)
			mux := http.NewServeMux()
			app := httptest.NewServer(mux)
			t.Cleanup(app.Close)
			logs := &syncBuffer{}
			auth, err := pipaauth.New(context.Background(), pipaauth.Config{
				Issuer: provider.URL, ClientID: pipatest.DefaultClientID, ClientSecret: pipatest.DefaultClientSecret,
				RedirectURL: app.URL + "/callback", SessionKeys: newKeys(), InsecureAllowHTTP: true,
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			mux.Handle("GET /login", auth.LoginHandler())
			mux.Handle("GET /callback", auth.CallbackHandler())
			mux.Handle("POST "+tc.mount, auth.LogoutHandler())
			mux.HandleFunc("GET /{$}", func(http.ResponseWriter, *http.Request) {})
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar}
			for range 2 {
				resp, err := browser.Get(app.URL + "/login")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				req, _ := http.NewRequest(http.MethodPost, app.URL+tc.mount, nil)
				req.Header.Set("Sec-Fetch-Site", "same-origin")
				resp, err = browser.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			n := strings.Count(logs.String(), "mounted at another path than Config.LogoutPath")
			if tc.warn && n != 1 {
				t.Errorf("two logouts at %s: %d warnings, want 1:\n%s", tc.mount, n, logs)
			}
			if !tc.warn && n != 0 {
				t.Errorf("logouts at LogoutPath warned:\n%s", logs)
			}
		})
	}
}
