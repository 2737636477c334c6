package pipaauth_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Mounting LogoutHandler elsewhere than /logout: set Config.LogoutPath to
// its path. Without a SessionStore the login's ID token lives in a cookie
// with that Path, so browsers send it to the logout handler only (not with
// every page), and the logout can send it to PiPA as id_token_hint. This
// provider, like Ory Hydra, sends the browser back to PostLogoutRedirectURL
// only with the hint.
func ExampleConfig_logoutPath() {
	provider := pipatest.NewServer()
	defer provider.Close()
	provider.SetBehavior(pipatest.Behavior{RequireIDTokenHint: true})
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:                provider.URL,
		ClientID:              pipatest.DefaultClientID,
		ClientSecret:          pipatest.DefaultClientSecret,
		RedirectURL:           app.URL + "/callback",
		CookieName:            "app", // default: pipaauth- and a hash of ClientID
		LogoutPath:            "/account/logout",
		PostLogoutRedirectURL: app.URL + "/",
		SessionKeys:           [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP:     true, // plain-HTTP loopback servers; production uses https
		Logger:                slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("POST /account/logout", auth.LogoutHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for _, c := range r.Cookies() {
			if strings.HasPrefix(c.Name, "app") {
				names = append(names, c.Name)
			}
		}
		fmt.Fprintf(w, "cookies sent with a page: %v", names)
	})

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(app.URL + "/login")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	logout, _ := url.Parse(app.URL + "/account/logout")
	for _, c := range jar.Cookies(logout) {
		if strings.HasPrefix(c.Name, "app") {
			fmt.Println("sent to the logout:", c.Name)
		}
	}
	resp, err = browser.PostForm(app.URL+"/account/logout", nil)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("back at", resp.Request.URL.Path, "from PiPA's end-session page")
	// Output:
	// cookies sent with a page: [app]
	// sent to the logout: app-idt0
	// sent to the logout: app
	// back at / from PiPA's end-session page
}
