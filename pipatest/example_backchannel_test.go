package pipatest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pipaauth/pipaauth/pipatest"
)

// LogoutToken signs the logout tokens a provider POSTs to a client's
// backchannel_logout_uri: valid by default, or broken one way at a time, to
// test a back-channel logout handler. Here go-oidc verifies both.
func ExampleServer_LogoutToken() {
	s := pipatest.NewServer()
	defer s.Close()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, s.URL)
	if err != nil {
		log.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: pipatest.DefaultClientID})

	valid := s.LogoutToken(pipatest.DefaultClientID, pipatest.LogoutTokenOptions{SID: "pipa-session-1"})
	lt, err := verifier.VerifyLogout(ctx, valid)
	fmt.Println(lt.SessionID, lt.Subject == s.Subject(pipatest.DefaultClientID, "alice"), err)

	withNonce := s.LogoutToken(pipatest.DefaultClientID, pipatest.LogoutTokenOptions{Nonce: "n"})
	_, err = verifier.VerifyLogout(ctx, withNonce)
	fmt.Println(err != nil)
	// Output:
	// pipa-session-1 true <nil>
	// true
}
