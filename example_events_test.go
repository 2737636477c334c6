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
	"sync"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Count outcomes by kind and reason with Config.OnEvent; a metrics library
// would increment its counters here (see e2e/examples/prometheus).
func ExampleConfig_onEvent() {
	provider := pipatest.NewServer()
	defer provider.Close()

	var mu sync.Mutex
	counts := map[string]int{}
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
		OnEvent: func(ctx context.Context, e pipaauth.Event) {
			mu.Lock()
			defer mu.Unlock()
			counts[string(e.Kind)+" "+e.Reason]++
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/logout", auth.LogoutHandler())
	mux.Handle("/{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "home") }))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for _, step := range []struct{ method, path string }{
		{"GET", "/login"},                        // logs alice in
		{"POST", "/logout"},                      // logs her out
		{"GET", "/callback?state=forged&code=x"}, // a forged callback
	} {
		req, _ := http.NewRequest(step.method, app.URL+step.path, nil)
		resp, err := browser.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(counts["login "], counts["logout "], counts["login_failed state_unknown"])
	// Output: 1 1 1
}

// Start while PiPA may be down: New returns at once, requests with a
// session work throughout, and logins answer 503 with Retry-After until
// discovery succeeds in the background. Give New a context that lives as
// long as the application: its end stops the background retries.
func ExampleConfig_lazyDiscovery() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	auth, err := pipaauth.New(ctx, pipaauth.Config{
		Issuer:        "https://127.0.0.1:1", // nothing listens here: PiPA is "down"
		ClientID:      "app",
		ClientSecret:  "secret",
		RedirectURL:   "https://app.example/callback",
		SessionKeys:   [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		LazyDiscovery: true,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	rec := httptest.NewRecorder()
	auth.LoginHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	fmt.Println(rec.Code, rec.Header().Get("Retry-After") != "")
	// Output: 503 true
}
