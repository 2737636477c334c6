// Package e2etest holds the test helpers the e2e module's packages share: the
// one test application (on a loopback server, logging in with a pipatest
// provider) and the one log sink safe for concurrent writers.
package e2etest

import (
	"bytes"
	"sync"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/internal/apptest"
	"github.com/pipaauth/pipaauth/pipatest"
)

// App is an application on a loopback server whose Auth logs in with a
// pipatest provider: the repository's one test application, written once
// in the library's internal/apptest and shared with its tests. Tests mount
// their routes on Mux.
type App = apptest.App

// NewApp starts an App for the test t, closed when t ends (apptest.New): a
// TLS server when the provider is one (the Config's HTTPClient then trusts
// its certificate), else a plain-HTTP one with InsecureAllowHTTP. The
// Config uses pipatest's default client, fresh session keys, RedirectURL
// Srv.URL+"/callback", and discards logs; edit, when not nil, changes it
// before New.
func NewApp(t testing.TB, provider *pipatest.Server, edit func(*pipaauth.Config)) *App {
	t.Helper()
	return apptest.New(t, provider, edit)
}

// NewKeys returns a fresh session key pair: a 32-byte hash key and a 32-byte
// block key.
func NewKeys() [][]byte { return apptest.NewKeys() }

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
