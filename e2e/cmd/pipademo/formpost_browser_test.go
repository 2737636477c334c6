package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// TestBrowserFormPost logs in with ResponseMode form_post in Chromium. The
// application is served as http://localhost and PiPA as http://127.0.0.1:
// two sites, so PiPA's auto-submitted form is a genuine cross-site POST, on
// which the browser sends only SameSite=None cookies (Secure, which
// Chromium accepts from http://localhost, a secure context). The login
// finishing at all proves the attempt cookie arrived; the callback also
// records what the browser sent.
func TestBrowserFormPost(t *testing.T) {
	browser := startChromium(t)
	provider := pipatest.NewServer() // http://127.0.0.1:port
	t.Cleanup(provider.Close)

	var mu sync.Mutex
	type seen struct {
		method, origin, site string
		attempt              bool
	}
	var callbacks []seen

	mux := http.NewServeMux()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewUnstartedServer(mux)
	app.Listener = ln
	app.Start()
	t.Cleanup(app.Close)
	appURL := "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	auth, err := pipaauth.New(ctx, pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       appURL + "/callback",
		SessionKeys:       [][]byte{[]byte(strings.Repeat("k", 32)), []byte(strings.Repeat("b", 32))},
		InsecureAllowHTTP: true,
		ResponseMode:      "form_post",
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	callback := auth.CallbackHandler()
	mux.Handle("/callback", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		callbacks = append(callbacks, seen{r.Method, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"), strings.Contains(r.Header.Get("Cookie"), "-login-")})
		mu.Unlock()
		callback.ServeHTTP(w, r)
	}))
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/private", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>private</title><p id="user-id">`+u.ID+`</p>`)
	})))

	tab := newBrowserContext(t, browser)
	step(t, tab, "opening /private", chromedp.Navigate(appURL+"/private"))
	step(t, tab, "waiting for the private page", chromedp.WaitVisible(chromedp.ID("user-id")))
	if got, want := text(t, tab, "user-id"), provider.Subject(pipatest.DefaultClientID, "alice"); got != want {
		t.Errorf("logged in as %q, want alice (%q)", got, want)
	}
	wantLocation(t, tab, appURL+"/private")
	mu.Lock()
	defer mu.Unlock()
	if len(callbacks) != 1 {
		t.Fatalf("callback requests %+v, want one", callbacks)
	}
	c := callbacks[0]
	// PiPA's pages send Referrer-Policy: no-referrer, under which Chromium
	// sends Origin: null on a cross-origin POST: why the callback accepts
	// null beside PiPA's origin.
	if c.method != http.MethodPost || (c.origin != "null" && c.origin != provider.URL) || c.site != "cross-site" || !c.attempt {
		t.Errorf("the callback got %+v; want a cross-site POST from %s (or null) carrying the attempt cookie", c, provider.URL)
	}
}
