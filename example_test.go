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

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// newApp starts an application on loopback whose routes are built by routes
// once its Auth exists, and a browser-like client with a cookie jar.
func newApp(provider *pipatest.Server, routes func(auth *pipaauth.Auth, mux *http.ServeMux)) (*httptest.Server, *http.Client) {
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:       provider.URL,
		ClientID:     pipatest.DefaultClientID,
		ClientSecret: pipatest.DefaultClientSecret,
		RedirectURL:  app.URL + "/callback",
		SessionKeys:  [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		// The example runs on plain-HTTP loopback servers; production uses https.
		InsecureAllowHTTP: true,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	routes(auth, mux)
	jar, _ := cookiejar.New(nil)
	return app, &http.Client{Jar: jar}
}

func get(client *http.Client, url string) {
	resp, err := client.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, body)
}

// Wrap existing routes with RequireLogin and mount the login and callback
// handlers. The first visit goes through PiPA (here an in-process test
// provider that approves alice at once) and lands back on the page asked for.
func Example() {
	provider := pipatest.NewServer()
	defer provider.Close()

	app, browser := newApp(provider, func(auth *pipaauth.Auth, mux *http.ServeMux) {
		mux.Handle("/login", auth.LoginHandler())
		mux.Handle("/callback", auth.CallbackHandler())
		mux.Handle("POST /logout", auth.LogoutHandler())
		mux.Handle("/hello", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, _ := pipaauth.UserFromContext(r.Context())
			fmt.Fprintf(w, "hello %s", user.Email)
		})))
	})
	defer app.Close()

	get(browser, app.URL+"/hello")
	// Output: 200 hello alice@example.com
}

// Protect an admin page with RequireUser: a logged-in user the allow
// function refuses gets 403.
func ExampleAuth_RequireUser() {
	provider := pipatest.NewServer()
	defer provider.Close()

	app, browser := newApp(provider, func(auth *pipaauth.Auth, mux *http.ServeMux) {
		mux.Handle("/login", auth.LoginHandler())
		mux.Handle("/callback", auth.CallbackHandler())
		admin := auth.RequireUser(pipaauth.AllowEmails("alice@example.com"))
		mux.Handle("/admin", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "admin area")
		})))
	})
	defer app.Close()

	get(browser, app.URL+"/admin") // alice is the provider's default user

	provider.SetUser(pipatest.User{Name: "mallory", Email: "mallory@example.net", EmailVerified: true, ShareEmail: true})
	_, other := newApp(provider, func(*pipaauth.Auth, *http.ServeMux) {}) // a second browser, fresh cookies
	resp, err := other.Get(app.URL + "/admin")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// 200 admin area
	// 403
}

// API clients are never redirected: without a session they get 401 and a
// JSON body naming the login URL.
func ExampleAuth_RequireLogin_api() {
	provider := pipatest.NewServer()
	defer provider.Close()

	app, browser := newApp(provider, func(auth *pipaauth.Auth, mux *http.ServeMux) {
		mux.Handle("/login", auth.LoginHandler())
		mux.Handle("/api/me", auth.RequireLogin(http.NotFoundHandler()))
	})
	defer app.Close()

	req, _ := http.NewRequest("GET", app.URL+"/api/me", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := browser.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// Output: 401 {"error":"login_required","login_url":"/login?return_to=%2Fapi%2Fme"}
}
