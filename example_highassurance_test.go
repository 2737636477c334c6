package pipaauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// A client of a FAPI 2.0 provider: private_key_jwt instead of a client
// secret, pushed authorization requests and DPoP-bound tokens. Here
// pipatest plays a provider that demands all three; the client is
// registered with its public key only.
func ExampleConfig_highAssurance() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // in production: loaded, or a KMS signer
	if err != nil {
		log.Fatal(err)
	}
	provider := pipatest.NewServer()
	defer provider.Close()
	provider.RegisterClient(pipatest.Client{ID: "bank-app",
		JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1"}}}})
	provider.SetProfile(pipatest.Profile{RequirePushedAuthorization: true, RequireDPoP: true, DPoPNonce: true, PrivateKeyJWTOnly: true})

	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:      provider.URL,
		ClientID:    "bank-app",
		RedirectURL: app.URL + "/callback",
		SessionKeys: [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		KeepTokens:  true,

		ClientAssertionKey:   key,
		ClientAssertionKeyID: "k1",
		PushedAuthorization:  true, // also automatic: discovery requires it
		DPoP:                 true,

		InsecureAllowHTTP: true, // loopback test servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/login", auth.LoginHandler())
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.Token(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		// Client sends the token with a DPoP proof of the session's key.
		resp, err := auth.Client(w, r).Get(provider.URL + "/userinfo")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		fmt.Fprintf(w, "token type %s, userinfo %d", tok.TokenType, resp.StatusCode)
	})))

	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(app.URL + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	last, _ := provider.LastTokenRequest()
	fmt.Println("client authentication:", last.ClientAuth, "- pushed requests:", provider.PushedRequests())
	// Output:
	// token type DPoP, userinfo 200
	// client authentication: private_key_jwt - pushed requests: 1
}
