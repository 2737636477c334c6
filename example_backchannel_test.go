package pipaauth_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Mount BackChannelLogoutHandler at the URL registered at the provider as
// backchannel_logout_uri; the provider POSTs signed logout tokens to it. Here
// pipatest signs the token as PiPA would. Ending sessions by sid or sub needs
// a session store that can: with cookie sessions, as here, the handler
// answers 501 and New logs that back-channel logout is not available.
func ExampleAuth_BackChannelLogoutHandler() {
	provider := pipatest.NewServer()
	defer provider.Close()

	app, _ := newApp(provider, func(auth *pipaauth.Auth, mux *http.ServeMux) {
		mux.Handle("/backchannel-logout", auth.BackChannelLogoutHandler())
	})
	defer app.Close()

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
