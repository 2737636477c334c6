package pipaauth_test

// The first hour: New logs nothing at Info or above in a correct
// configuration, and BackChannelLogoutHandler without a store that can
// revoke is logged once, when it is mounted (issue 18, item 8).

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestNewIsQuiet(t *testing.T) {
	provider := pipatest.NewTLSServer()
	t.Cleanup(provider.Close)
	app := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(app.Close)
	logs := &syncBuffer{}
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:       provider.URL,
		ClientID:     pipatest.DefaultClientID,
		ClientSecret: pipatest.DefaultClientSecret,
		RedirectURL:  app.URL + "/callback",
		SessionKeys:  [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		HTTPClient:   provider.Client(),
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); s != "" {
		t.Errorf("New logged at Info or above in a correct configuration:\n%s", s)
	}
	// Mounting the back-channel handler without a store that revokes is a
	// mistake worth one warning, however often it is mounted.
	auth.BackChannelLogoutHandler()
	auth.BackChannelLogoutHandler()
	if n := strings.Count(logs.String(), "level=WARN msg=\"pipaauth: back-channel logout is not available"); n != 1 {
		t.Errorf("the unavailable back-channel logout was logged %d times, want once as a warning:\n%s", n, logs.String())
	}
}
