package pipaauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
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

// Wrap routes with RequireLogin and mount the login, callback and logout
// handlers. The first visit goes through PiPA (here pipatest, an in-process
// provider that approves its default user, alice, at once) and lands back
// on the page asked for.
func Example() {
	provider := pipatest.NewServer()
	defer provider.Close()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

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
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("POST /logout", auth.LogoutHandler())
	mux.Handle("GET /hello", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := pipaauth.UserFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", user.Email)
	})))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(app.URL + "/hello")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "at", resp.Request.URL.Path)
	// Output: 200 hello alice@example.com at /hello
}

// New checks the whole Config before it fetches PiPA's discovery document:
// a mistake is an error that wraps ErrConfig and names the field and the fix.
func ExampleNew() {
	provider := pipatest.NewServer()
	defer provider.Close()

	cfg := pipaauth.Config{
		Issuer:   provider.URL,
		ClientID: pipatest.DefaultClientID,
		// ClientSecret forgotten.
		RedirectURL:       "http://127.0.0.1:8080/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
	}
	_, err := pipaauth.New(context.Background(), cfg)
	fmt.Println(errors.Is(err, pipaauth.ErrConfig))
	fmt.Println(err)

	cfg.ClientSecret = pipatest.DefaultClientSecret
	auth, err := pipaauth.New(context.Background(), cfg)
	fmt.Println(auth != nil, err)
	// Output:
	// true
	// pipaauth: invalid configuration: ClientSecret is empty: load the client secret from the PiPA console through the environment or a secret store
	// true <nil>
}

// LogoutHandler takes a POST from a form of the same site, ends the session
// and sends the browser to PiPA's end-session endpoint, which sends it back
// to PostLogoutRedirectURL.
func ExampleAuth_LogoutHandler() {
	provider := pipatest.NewServer()
	defer provider.Close()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:                provider.URL,
		ClientID:              pipatest.DefaultClientID,
		ClientSecret:          pipatest.DefaultClientSecret,
		RedirectURL:           app.URL + "/callback",
		PostLogoutRedirectURL: app.URL + "/", // register it in the PiPA console
		SessionKeys:           [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP:     true, // plain-HTTP loopback servers; production uses https
		Logger:                slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("POST /logout", auth.LogoutHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if user, ok := auth.User(r); ok {
			// The page a logged-in user sees holds the logout form.
			fmt.Fprintf(w, `%s <form method="post" action="/logout"><button>Log out</button></form>`, html.EscapeString(user.Email))
			return
		}
		io.WriteString(w, `<a href="/login">Log in</a>`)
	})

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for _, step := range []func() (*http.Response, error){
		func() (*http.Response, error) { return browser.Get(app.URL + "/login") },
		func() (*http.Response, error) { return browser.PostForm(app.URL+"/logout", nil) }, // the form's POST
	} {
		resp, err := step()
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Request.URL.Path, string(body))
	}
	// Output:
	// / alice@example.com <form method="post" action="/logout"><button>Log out</button></form>
	// / <a href="/login">Log in</a>
}

// User greets a logged-in user on a public page, without sending anyone
// to log in.
func ExampleAuth_User() {
	provider := pipatest.NewServer()
	defer provider.Close()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       app.URL + "/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if user, ok := auth.User(r); ok {
			fmt.Fprintf(w, "welcome back, %s (verified: %t)", user.Email, user.EmailVerified)
			return
		}
		io.WriteString(w, "welcome, guest")
	})

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for _, path := range []string{"/", "/login?return_to=/"} {
		resp, err := browser.Get(app.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// welcome, guest
	// welcome back, alice@example.com (verified: true)
}

// With KeepTokens, Token returns the user's access token (refreshed when it
// has expired) and Client calls PiPA's APIs with it: here the userinfo
// endpoint.
func ExampleAuth_Client() {
	provider := pipatest.NewServer()
	defer provider.Close()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       app.URL + "/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		KeepTokens:        true,
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("GET /profile", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Call Token and Client before writing the response: a refresh
		// writes the session cookie.
		tok, err := auth.Token(w, r)
		if err != nil {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		resp, err := auth.Client(w, r).Get(provider.URL + "/userinfo")
		if err != nil {
			http.Error(w, "PiPA is unavailable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var info struct {
			Email string `json:"email"`
		}
		json.NewDecoder(resp.Body).Decode(&info)
		fmt.Fprintf(w, "token type %s; userinfo: %d %s", tok.Type(), resp.StatusCode, info.Email)
	})))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(app.URL + "/profile")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: token type Bearer; userinfo: 200 alice@example.com
}

// ContextWithUser tests a handler that sits behind RequireLogin without a
// login: give it a request whose context carries the user.
func ExampleContextWithUser() {
	profile := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := pipaauth.UserFromContext(r.Context())
		if !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "profile of %s", user.Email)
	})

	req := httptest.NewRequest("GET", "/profile", nil)
	req = req.WithContext(pipaauth.ContextWithUser(req.Context(), pipaauth.User{ID: "u-42", Email: "alice@example.com", EmailVerified: true}))
	rec := httptest.NewRecorder()
	profile.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output: 200 profile of alice@example.com
}

// A custom ErrorHandler renders refusals in the application's own style. It
// receives an *Error: show its Status and Reason (never err.Error(), which is
// for logs); errors.As finds a *ProviderError when PiPA refused the login,
// here because the user declined.
func ExampleConfig_errorHandler() {
	provider := pipatest.NewServer()
	defer provider.Close()
	provider.SetBehavior(pipatest.Behavior{AuthorizeError: "access_denied"}) // the user declines
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       app.URL + "/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status, reason := http.StatusInternalServerError, "Something went wrong."
			var e *pipaauth.Error
			if errors.As(err, &e) {
				status, reason = e.Status, e.Reason
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprintln(w, reason)
			var pe *pipaauth.ProviderError
			if errors.As(err, &pe) && pe.Code == "access_denied" {
				io.WriteString(w, "You declined the login. Log in again whenever you like.")
			} else if pipaauth.Retryable(err) {
				io.WriteString(w, "Please log in again.")
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(app.URL + "/login")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, body)
	// Output:
	// 403 PiPA did not complete the login: access_denied.
	// You declined the login. Log in again whenever you like.
}

// Protect an admin page with RequireUser: a logged-in user the allow
// function refuses gets 403.
func ExampleAuth_RequireUser() {
	provider := pipatest.NewServer()
	defer provider.Close()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       app.URL + "/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	admin := auth.RequireUser(pipaauth.AllowEmails("alice@example.com"))
	mux.Handle("GET /admin", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admin area")
	})))

	visit := func() { // a fresh browser logs in and asks for /admin
		jar, _ := cookiejar.New(nil)
		resp, err := (&http.Client{Jar: jar}).Get(app.URL + "/admin")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	visit() // alice, the provider's default user
	provider.SetUser(pipatest.User{Name: "mallory", Email: "mallory@example.net", EmailVerified: true, ShareEmail: true})
	visit()
	// Output:
	// 200
	// 403
}

// API clients are never redirected: without a session they get 401 and a
// JSON body naming the login URL.
func ExampleAuth_RequireLogin_api() {
	provider := pipatest.NewServer()
	defer provider.Close()
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()

	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       app.URL + "/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /api/me", auth.RequireLogin(http.NotFoundHandler()))

	req, _ := http.NewRequest("GET", app.URL+"/api/me", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// Output: 401 {"error":"login_required","login_url":"/login?return_to=%2Fapi%2Fme"}
}
