package pipaauth_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Config.Claims keeps the user's name and groups in the session: a page
// greets the user by name, and /admin is for the admins group. Here alice
// is an admin and bob is not.
func ExampleAllowClaim() {
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
		Scopes:            []string{"openid", "email", "profile"},
		Claims:            []string{"name", "groups"},
		InsecureAllowHTTP: true, // plain-HTTP loopback servers; production uses https
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /login", auth.LoginHandler())
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("GET /me", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := pipaauth.UserFromContext(r.Context())
		var name string
		var groups []string
		user.Claim("name", &name)
		user.Claim("groups", &groups)
		fmt.Fprintf(w, "%s in %s", name, strings.Join(groups, ", "))
	})))
	admins := auth.RequireUser(pipaauth.AllowClaim("groups", "admins"))
	mux.Handle("GET /admin", admins(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admin page")
	})))

	users := []pipatest.User{
		{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true,
			Claims: map[string]any{"name": "Alice", "groups": []string{"admins", "staff"}}},
		{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true,
			Claims: map[string]any{"name": "Bob"}, UserInfoClaims: map[string]any{"groups": []string{"staff"}}},
	}
	for _, u := range users {
		provider.SetUser(u)
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		for _, path := range []string{"/login?return_to=/me", "/admin"} {
			resp, err := browser.Get(app.URL + path)
			if err != nil {
				log.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			first, _, _ := strings.Cut(string(body), "\n")
			if resp.StatusCode != http.StatusOK {
				first = http.StatusText(resp.StatusCode)
			}
			fmt.Printf("%s %s: %s\n", u.Name, strings.Split(path, "?")[0], first)
		}
	}
	// Output:
	// alice /login: Alice in admins, staff
	// alice /admin: admin page
	// bob /login: Bob in staff
	// bob /admin: Forbidden
}
