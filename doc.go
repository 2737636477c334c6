// Package pipaauth logs the users of a net/http application in with PiPA, an
// OpenID Connect provider, using the authorization code flow with PKCE.
//
// Build an *Auth once with New, mount LoginHandler, CallbackHandler and
// LogoutHandler, and wrap the routes to protect with RequireLogin or
// RequireUser. Handlers behind the guard read the user with UserFromContext;
// public pages ask Auth.User. The session lives in an encrypted, signed
// cookie (gorilla/securecookie), or in any gorilla sessions.Store with
// Config.SessionStore; ID tokens are verified with go-oidc and codes
// exchanged with x/oauth2.
//
// # A complete program
//
// Register the application in the PiPA console with the redirect URL
// https://app.example/callback and the post-logout redirect URL
// https://app.example/, then make the two session keys once and keep them,
// with the client secret, in your secret store:
//
//	export PIPA_CLIENT_ID=... PIPA_CLIENT_SECRET=...
//	export SESSION_HASH_KEY=$(openssl rand -base64 32) SESSION_BLOCK_KEY=$(openssl rand -base64 32)
//
// The program serves a public home page with a login link or a logout form,
// and a page for logged-in users only. It listens on plain HTTP behind a
// proxy that terminates TLS for https://app.example.
//
//	package main
//
//	import (
//		"context"
//		"encoding/base64"
//		"html/template"
//		"log"
//		"net/http"
//		"os"
//
//		"github.com/pipaauth/pipaauth"
//	)
//
//	var home = template.Must(template.New("home").Parse(`<!doctype html>
//	<title>Example</title>
//	{{if .ID}}
//	<p>Hello {{or .Email "there"}}. <a href="/account">Your account</a></p>
//	<form method="post" action="/logout"><button>Log out</button></form>
//	{{else}}
//	<p><a href="/login?return_to=/account">Log in with PiPA</a></p>
//	{{end}}`))
//
//	func main() {
//		var keys [][]byte
//		for _, name := range []string{"SESSION_HASH_KEY", "SESSION_BLOCK_KEY"} {
//			key, err := base64.StdEncoding.DecodeString(os.Getenv(name))
//			if err != nil {
//				log.Fatalf("%s: %v (make it with: openssl rand -base64 32)", name, err)
//			}
//			keys = append(keys, key)
//		}
//		auth, err := pipaauth.New(context.Background(), pipaauth.Config{
//			Issuer:       "https://pipa.example",
//			ClientID:     os.Getenv("PIPA_CLIENT_ID"),
//			ClientSecret: os.Getenv("PIPA_CLIENT_SECRET"),
//			RedirectURL:  "https://app.example/callback",
//			// After logout PiPA sends the browser back here, instead of
//			// showing its own page.
//			PostLogoutRedirectURL: "https://app.example/",
//			SessionKeys:           keys,
//		})
//		if err != nil {
//			log.Fatal(err) // names the field and the fix
//		}
//
//		mux := http.NewServeMux()
//		mux.Handle("GET /login", auth.LoginHandler())
//		mux.Handle("GET /callback", auth.CallbackHandler())
//		mux.Handle("POST /logout", auth.LogoutHandler())
//		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
//			user, _ := auth.User(r) // the zero User when nobody is logged in
//			w.Header().Set("Cache-Control", "no-store")
//			home.Execute(w, user)
//		})
//		mux.Handle("GET /account", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//			user, _ := pipaauth.UserFromContext(r.Context())
//			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
//			w.Write([]byte("Logged in as " + user.Email + " (PiPA id " + user.ID + ")\n"))
//		})))
//		log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
//	}
//
// The logout form posts to LogoutHandler, which accepts only a POST from a
// page of the application (its Origin is RedirectURL's origin), ends the session and
// sends the browser to PiPA's end-session endpoint, which ends the PiPA
// session and comes back to PostLogoutRedirectURL.
//
// For local development against pipatest (an in-process PiPA), set
// Config.InsecureAllowHTTP and use http:// URLs; see the package examples.
package pipaauth
