package promexample_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/securecookie"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pipaauth/pipaauth"
	promexample "github.com/pipaauth/pipaauth/e2e/examples/prometheus"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Count logins, failures and logouts with Prometheus, and serve them at
// /metrics. Here a user logs in through an in-process PiPA, a forged
// callback fails, the user logs out, and a login the user declines fails
// with its reason.
func Example() {
	provider := pipatest.NewServer()
	defer provider.Close()
	reg := prometheus.NewRegistry()
	metrics := promexample.New(reg)

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
		OnEvent:           metrics.OnEvent,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/logout", auth.LogoutHandler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/{$}", http.NotFoundHandler())

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(path string) {
		resp, err := browser.Get(app.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/login") // logs alice in through PiPA
	browser.Post(app.URL+"/logout", "", nil)
	get("/callback?state=forged&code=x")
	provider.SetBehavior(pipatest.Behavior{AuthorizeError: "access_denied"})
	get("/login")

	for _, l := range [][2]string{
		{"login", ""},
		{"login_failed", "state_unknown"},
		{"login_failed", "provider_denied"},
		{"logout", ""},
	} {
		fmt.Printf("%s %q: %v\n", l[0], l[1], testutil.ToFloat64(metrics.Events.WithLabelValues(l[0], l[1])))
	}
	resp, err := http.Get(app.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "pipaauth_event_duration_seconds_count") {
			fmt.Println(line)
		}
	}
	// Output:
	// login "": 1
	// login_failed "state_unknown": 1
	// login_failed "provider_denied": 1
	// logout "": 1
	// pipaauth_event_duration_seconds_count{kind="login"} 1
	// pipaauth_event_duration_seconds_count{kind="login_failed"} 2
	// pipaauth_event_duration_seconds_count{kind="logout"} 1
}
