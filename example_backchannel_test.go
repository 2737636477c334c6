package pipaauth_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Mount BackChannelLogoutHandler at the URL registered at the provider as
// backchannel_logout_uri; the provider POSTs signed logout tokens to it. Here
// pipatest signs the token as PiPA would. Ending sessions by sid or sub needs
// a session store that can: with cookie sessions, as here, the handler
// answers 501 and mounting it logs a warning that back-channel logout is
// not available.
func ExampleAuth_BackChannelLogoutHandler() {
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
		// SessionStore: a RevocableStore such as redisstore ends sessions
		// by sid or sub; see docs/redis.md.
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("POST /backchannel-logout", auth.BackChannelLogoutHandler())

	token := provider.LogoutToken(pipatest.DefaultClientID, pipatest.LogoutTokenOptions{SID: "pipa-session-1"})
	resp, err := http.Post(app.URL+"/backchannel-logout", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// Output: 501 {"error":"server_error","error_description":"Back-channel logout is not available: the session store cannot end sessions by sid or sub."}
}
