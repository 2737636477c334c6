// Package e2etest holds the test helpers the e2e module's packages share: the
// one test application (on a loopback server, logging in with a pipatest
// provider) and the one log sink safe for concurrent writers.
package e2etest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

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

// NewApp starts an App for the test t, closed when t ends: a TLS server when
// the provider is one (the Config's HTTPClient then trusts its certificate),
// else a plain-HTTP one with InsecureAllowHTTP. The Config uses pipatest's
// default client, fresh session keys, RedirectURL Srv.URL+"/callback", and
// discards logs; edit, when not nil, changes it before New.
func NewApp(t testing.TB, provider *pipatest.Server, edit func(*pipaauth.Config)) *App {
	t.Helper()
	a := &App{Mux: http.NewServeMux()}
	overTLS := strings.HasPrefix(provider.URL, "https://")
	if overTLS {
		a.Srv = httptest.NewTLSServer(a.Mux)
	} else {
		a.Srv = httptest.NewServer(a.Mux)
	}
	t.Cleanup(a.Srv.Close)
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
	var err error
	if a.Auth, err = pipaauth.New(context.Background(), cfg); err != nil {
		t.Fatalf("pipaauth.New: %v", err)
	}
	return a
}

// NewKeys returns a fresh session key pair: a 32-byte hash key and a 32-byte
// block key.
func NewKeys() [][]byte {
	return [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
}

// LogBuffer collects log lines; it is safe for concurrent writers and
// readers, as the handlers of a test server log from their own goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
