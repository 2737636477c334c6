// Package e2etest holds the test helpers the e2e module's packages share: an
// application on a loopback server that logs in with a pipatest provider, and
// a log sink safe for concurrent writers.
package e2etest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// App is an application on a plain-HTTP loopback server whose Auth logs in
// with a pipatest provider. Tests mount their routes on Mux.
type App struct {
	Srv  *httptest.Server
	Mux  *http.ServeMux
	Auth *pipaauth.Auth
}

// NewApp starts an App for the test t, closed when t ends. The Config uses
// pipatest's default client, fresh session keys, RedirectURL
// Srv.URL+"/callback", InsecureAllowHTTP (the servers are plain-HTTP loopback
// ones) and discards logs; edit, when not nil, changes it before New.
func NewApp(t testing.TB, provider *pipatest.Server, edit func(*pipaauth.Config)) *App {
	t.Helper()
	a := &App{Mux: http.NewServeMux()}
	a.Srv = httptest.NewServer(a.Mux)
	t.Cleanup(a.Srv.Close)
	cfg := pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       a.Srv.URL + "/callback",
		SessionKeys:       NewKeys(),
		InsecureAllowHTTP: true,
		Logger:            slog.New(slog.DiscardHandler),
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
