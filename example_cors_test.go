package pipaauth_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// cors answers CORS preflights for the allowed origins itself and marks
// the real requests' answers, around next. A production application would
// use its router's CORS middleware; what matters is where it sits.
func cors(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !slices.Contains(allowed, origin) {
			next.ServeHTTP(w, r) // not a cross-origin call we allow: no CORS headers
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true") // the session cookie goes along
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			w.WriteHeader(http.StatusNoContent)
			return // the preflight never reaches the guard
		}
		next.ServeHTTP(w, r)
	})
}

// An API called from another origin (a front end on app.example calling
// api.example) puts its CORS handler outside RequireLogin: a preflight
// carries no cookies (Fetch standard, CORS-preflight request), so behind
// the guard it would get 401 and the browser would block the call. The
// guard cannot answer preflights itself: which origins, methods and headers
// to allow is the application's policy, and answering every OPTIONS would
// let any site probe the API. The real request carries the session cookie
// (credentials: "include") and passes through the guard as usual.
func Example_cors() {
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
	frontEnd := []string{"https://app.example"}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		fmt.Fprintf(w, "reports of %s", u.Email)
	})
	mux.Handle("/api/reports", cors(frontEnd, auth.RequireLogin(api)))    // CORS outside the guard
	mux.Handle("/inside/reports", auth.RequireLogin(cors(frontEnd, api))) // the mistake
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, path string) {
		req, _ := http.NewRequest(method, app.URL+path, nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Accept", "application/json")
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "GET")
		}
		resp, err := browser.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("%s %s %d Allow-Origin=%q\n", method, path, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	call(http.MethodOptions, "/api/reports")    // the preflight: answered by CORS
	call(http.MethodGet, "/api/reports")        // the real request needs the session
	call(http.MethodOptions, "/inside/reports") // behind the guard, the preflight fails

	// Log in (pipatest approves alice at once), then call again.
	for next := app.URL + "/login"; next != ""; {
		resp, err := browser.Get(next)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		next = ""
		if loc, err := resp.Location(); err == nil && resp.StatusCode/100 == 3 && loc.Path != "/" {
			next = loc.String()
		}
	}
	call(http.MethodGet, "/api/reports")
	// Output:
	// OPTIONS /api/reports 204 Allow-Origin="https://app.example"
	// GET /api/reports 401 Allow-Origin="https://app.example"
	// OPTIONS /inside/reports 401 Allow-Origin=""
	// GET /api/reports 200 Allow-Origin="https://app.example"
}
