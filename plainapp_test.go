package pipaauth_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// plainApp is an application on a plain-HTTP loopback server whose Auth logs
// in with provider: the shape most tests of this package need. Tests mount
// their routes on mux.
type plainApp struct {
	srv  *httptest.Server
	mux  *http.ServeMux
	auth *pipaauth.Auth
}

// newPlainApp starts a plainApp. The Config uses pipatest's default client,
// fresh session keys, RedirectURL srv.URL+"/callback", InsecureAllowHTTP (the
// servers are plain-HTTP loopback ones) and discards logs; edit, when not
// nil, changes it before New.
func newPlainApp(tb testing.TB, provider *pipatest.Server, edit func(*pipaauth.Config)) *plainApp {
	tb.Helper()
	a := &plainApp{mux: http.NewServeMux()}
	a.srv = httptest.NewServer(a.mux)
	tb.Cleanup(a.srv.Close)
	cfg := pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       a.srv.URL + "/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true,
		Logger:            slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	var err error
	if a.auth, err = pipaauth.New(context.Background(), cfg); err != nil {
		tb.Fatal(err)
	}
	return a
}
