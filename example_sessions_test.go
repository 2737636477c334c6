package pipaauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/memstore"
	"github.com/pipaauth/pipaauth/pipatest"
)

// A "where you're signed in" page and a "sign out my other devices" button,
// on a store that lists sessions (memstore here; redisstore for a fleet).
// The button is a POST from the same site: serve it behind
// http.CrossOriginProtection, as LogoutHandler does.
func ExampleAuth_Sessions() {
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
		SessionStore:      memstore.New(memstore.Options{}),
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("GET /sessions", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := auth.Sessions(r)
		if err != nil {
			http.Error(w, "sessions unavailable", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(list) // render a page: device, LoginAt, LastSeen, a button per ID
	})))
	mux.Handle("POST /sessions/end-others", http.NewCrossOriginProtection().Handler(auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := auth.EndOtherSessions(r)
		if err != nil {
			http.Error(w, "could not sign out the other devices", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "signed out %d other devices", n)
	}))))

	// alice signs in on a laptop and a phone.
	browser := func(userAgent string) *http.Client {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		req, _ := http.NewRequest("GET", app.URL+"/sessions", nil)
		req.Header.Set("User-Agent", userAgent)
		resp, err := c.Do(req) // logs in through pipatest, then lists
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		return c
	}
	laptop := browser("Laptop/1.0")
	phone := browser("Phone/1.0")

	resp, err := laptop.Get(app.URL + "/sessions")
	if err != nil {
		log.Fatal(err)
	}
	var list []pipaauth.SessionInfo
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	for _, s := range list {
		fmt.Printf("%s current=%v\n", s.UserAgent, s.Current)
	}

	req, _ := http.NewRequest("POST", app.URL+"/sessions/end-others", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin") // as a browser sends for a form on the page
	resp, err = laptop.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var msg [64]byte
	n, _ := resp.Body.Read(msg[:])
	resp.Body.Close()
	fmt.Println(string(msg[:n]))

	// The phone's cookie no longer opens a session: it is sent to log in.
	phone.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = phone.Get(app.URL + "/sessions")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(resp.Header.Get("Location"))
	fmt.Println(resp.StatusCode, u.Path)
	// Output:
	// Phone/1.0 current=false
	// Laptop/1.0 current=true
	// signed out 1 other devices
	// 302 /authorize
}

// An administrator signs a user out everywhere: account disabled, password
// changed, a stolen laptop. With cookie sessions there is nothing to end,
// and the error says so.
func ExampleAuth_EndUserSessions() {
	provider := pipatest.NewServer()
	defer provider.Close()
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       "http://127.0.0.1:8080/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true,
		Logger:            slog.New(slog.DiscardHandler),
		// No SessionStore: cookie sessions.
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = auth.EndUserSessions(context.Background(), provider.Subject(pipatest.DefaultClientID, "alice"))
	fmt.Println(errors.Is(err, errors.ErrUnsupported))
	// Output: true
}
