// Package apptest holds the one test application of the repository's
// tests: an application server whose Auth logs in with a pipatest provider.
// The library's tests (testapp_test.go) and the e2e module's
// (e2e/internal/e2etest) both build on it. It imports testing, so only
// tests may import it.
package apptest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// App is an application on a loopback server whose Auth logs in with a
// pipatest provider. Tests mount their routes on Mux.
type App struct {
	Srv  *httptest.Server
	Mux  *http.ServeMux
	Auth *pipaauth.Auth
}

// New starts an App for the test tb, closed when tb ends: a TLS server when
// the provider is one (the Config's HTTPClient then trusts its
// certificate), else a plain-HTTP one with InsecureAllowHTTP. The Config
// uses pipatest's default client, fresh session keys, RedirectURL
// Srv.URL+"/callback", and discards logs; edit, when not nil, changes it
// before New, which gets 10 s to fetch discovery.
func New(tb testing.TB, provider *pipatest.Server, edit func(*pipaauth.Config)) *App {
	tb.Helper()
	a := &App{Mux: http.NewServeMux()}
	overTLS := strings.HasPrefix(provider.URL, "https://")
	if overTLS {
		a.Srv = httptest.NewTLSServer(a.Mux)
	} else {
		a.Srv = httptest.NewServer(a.Mux)
	}
	tb.Cleanup(a.Srv.Close)
	cfg := pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       a.Srv.URL + "/callback",
		SessionKeys:       NewKeys(),
		InsecureAllowHTTP: !overTLS,
		Logger:            slog.New(slog.DiscardHandler),
	}
	if overTLS {
		cfg.HTTPClient = provider.Client()
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if a.Auth, err = pipaauth.New(ctx, cfg); err != nil {
		tb.Fatalf("pipaauth.New: %v", err)
	}
	return a
}

// NewKeys returns a fresh session key pair: a 32-byte hash key and a 32-byte
// block key.
func NewKeys() [][]byte {
	return [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
}
