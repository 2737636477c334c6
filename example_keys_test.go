package pipaauth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Pin the algorithm PiPA signs this client's ID tokens and logout tokens
// with (its registered id_token_signed_response_alg): the setting of an
// OpenID Foundation certification run. Tokens signed with any other
// algorithm are refused, and New refuses an algorithm the discovery
// document does not list, "none" and the HMAC ones.
func ExampleConfig_signingAlgs() {
	provider := pipatest.NewServer()
	defer provider.Close()
	cfg := pipaauth.Config{
		Issuer:            provider.URL,
		ClientID:          pipatest.DefaultClientID,
		ClientSecret:      pipatest.DefaultClientSecret,
		RedirectURL:       "http://localhost:8080/callback",
		SessionKeys:       [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
		SigningAlgs:       []string{"RS256"},
	}
	if _, err := pipaauth.New(context.Background(), cfg); err != nil {
		log.Fatal(err)
	}
	fmt.Println("RS256: ok")

	cfg.SigningAlgs = []string{"HS256"}
	_, err := pipaauth.New(context.Background(), cfg)
	fmt.Println("HS256: ErrConfig", errors.Is(err, pipaauth.ErrConfig))
	// Output:
	// RS256: ok
	// HS256: ErrConfig true
}
