// Command readme is the program of the README's first section, kept here so
// that the tests build it and check that the README shows it byte for byte
// (everything from its package clause on).
package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/pipaauth/pipaauth"
)

func main() {
	var keys [][]byte // two keys, made once with: openssl rand -base64 32
	for _, name := range []string{"SESSION_HASH_KEY", "SESSION_BLOCK_KEY"} {
		key, err := base64.StdEncoding.DecodeString(os.Getenv(name))
		if err != nil || len(key) != 32 {
			log.Fatalf("%s must hold 32 random bytes in base64: openssl rand -base64 32", name)
		}
		keys = append(keys, key)
	}
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:                "https://pipa.example",
		ClientID:              os.Getenv("PIPA_CLIENT_ID"),
		ClientSecret:          os.Getenv("PIPA_CLIENT_SECRET"),
		RedirectURL:           "https://app.example/callback",
		PostLogoutRedirectURL: "https://app.example/", // PiPA sends the browser back here after logout
		SessionKeys:           keys,
	})
	if err != nil {
		log.Fatal(err) // names the field and the fix
	}
	mux := http.NewServeMux()
	routes(mux, auth)
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux)) // behind a proxy that terminates TLS
}

// routes mounts the application on mux: its tests call it too.
func routes(mux *http.ServeMux, auth *pipaauth.Auth) {
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("POST /logout", auth.LogoutHandler())

	// Public: greets a logged-in user, never sends anyone to log in.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if user, ok := auth.User(r); ok {
			fmt.Fprintf(w, `<p>Hello %s</p>
<form method="post" action="/logout"><button>Log out</button></form>`, html.EscapeString(user.Email))
			return
		}
		fmt.Fprint(w, `<a href="/login?return_to=/me">Log in with PiPA</a>`)
	})

	// Logged-in users only.
	mux.Handle("GET /me", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := pipaauth.UserFromContext(r.Context())
		fmt.Fprintf(w, "%s (PiPA id %s)", html.EscapeString(user.Email), html.EscapeString(user.ID))
	})))

	// ops@example.com only, and signed in at PiPA within the last 5 minutes.
	admins := auth.RequireUser(pipaauth.AllowEmails("ops@example.com"))
	mux.Handle("GET /admin", admins(auth.RequireRecentLogin(5*time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := pipaauth.UserFromContext(r.Context())
		fmt.Fprintf(w, "admin; signed in at PiPA at %s", user.AuthTime.UTC().Format(time.RFC3339))
	}))))
}
