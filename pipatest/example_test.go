package pipatest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/pipatest"
)

func Example() {
	s := pipatest.NewServer()
	defer s.Close()

	resp, err := s.Client().Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer         string   `json:"issuer"`
		Authorization  string   `json:"authorization_endpoint"`
		Token          string   `json:"token_endpoint"`
		ResponseTypes  []string `json:"response_types_supported"`
		SubjectTypes   []string `json:"subject_types_supported"`
		ChallengeTypes []string `json:"code_challenge_methods_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", resp.Status)
	fmt.Println("issuer is the server URL:", doc.Issuer == s.URL)
	fmt.Println("authorization endpoint:", strings.TrimPrefix(doc.Authorization, s.URL))
	fmt.Println("token endpoint:", strings.TrimPrefix(doc.Token, s.URL))
	fmt.Println("response types:", doc.ResponseTypes)
	fmt.Println("subject types:", doc.SubjectTypes)
	fmt.Println("PKCE methods:", doc.ChallengeTypes)
	// Output:
	// status: 200 OK
	// issuer is the server URL: true
	// authorization endpoint: /authorize
	// token endpoint: /token
	// response types: [code]
	// subject types: [pairwise]
	// PKCE methods: [S256]
}

// The authorization code flow as a relying party sees it, with
// golang.org/x/oauth2 and go-oidc. The browser is played by an HTTP client
// that does not follow the redirect back to the application.
func Example_codeFlow() {
	s := pipatest.NewTLSServer()
	defer s.Close()
	ctx := oidc.ClientContext(context.Background(), s.Client())

	provider, err := oidc.NewProvider(ctx, s.URL)
	if err != nil {
		log.Fatal(err)
	}
	conf := &oauth2.Config{
		ClientID:     pipatest.DefaultClientID,
		ClientSecret: pipatest.DefaultClientSecret,
		Endpoint:     provider.Endpoint(),
		RedirectURL:  "https://app.example/callback",
		Scopes:       []string{oidc.ScopeOpenID, "email"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("some-state", oidc.Nonce("some-nonce"), oauth2.S256ChallengeOption(verifier))

	browser := *s.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(authURL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	back, err := resp.Location()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", back.Query().Get("state"))

	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	rawIDToken, _ := tok.Extra("id_token").(string)
	idToken, err := provider.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, rawIDToken)
	if err != nil {
		log.Fatal(err)
	}
	var claims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	if err := idToken.Claims(&claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println("nonce:", idToken.Nonce)
	fmt.Println("at_hash ok:", idToken.VerifyAccessToken(tok.AccessToken) == nil)
	fmt.Println("pairwise subject:", idToken.Subject == s.Subject(conf.ClientID, "alice"))
	fmt.Println("user_id is the subject:", tok.Extra("user_id") == idToken.Subject)
	fmt.Println("email:", claims.Email, claims.Verified)
	// Output:
	// state: some-state
	// nonce: some-nonce
	// at_hash ok: true
	// pairwise subject: true
	// user_id is the subject: true
	// email: alice@example.com true
}
