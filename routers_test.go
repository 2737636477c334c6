package pipaauth_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// The handlers and middleware have the standard net/http shapes, so any
// router mounts them, at any path. Each router here mounts the login under
// /auth and the protected page under /app, with its own grouping idiom.
func TestRouters(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	greet := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, "hello "+u.Email)
	})
	routers := map[string]func(auth *pipaauth.Auth) http.Handler{
		"ServeMux patterns": func(auth *pipaauth.Auth) http.Handler {
			m := http.NewServeMux()
			m.Handle("GET /auth/login", auth.LoginHandler())
			m.Handle("GET /auth/callback", auth.CallbackHandler())
			m.Handle("POST /auth/logout", auth.LogoutHandler())
			m.Handle("GET /app/{page}", auth.RequireLogin(greet))
			return m
		},
		"chi": func(auth *pipaauth.Auth) http.Handler {
			r := chi.NewRouter()
			r.Route("/auth", func(r chi.Router) {
				r.Method("GET", "/login", auth.LoginHandler())
				r.Method("GET", "/callback", auth.CallbackHandler())
				r.Method("POST", "/logout", auth.LogoutHandler())
			})
			r.Route("/app", func(r chi.Router) {
				r.Use(auth.RequireLogin)
				r.Get("/{page}", greet)
			})
			return r
		},
		"gorilla/mux": func(auth *pipaauth.Auth) http.Handler {
			r := mux.NewRouter()
			a := r.PathPrefix("/auth").Subrouter()
			a.Handle("/login", auth.LoginHandler()).Methods("GET")
			a.Handle("/callback", auth.CallbackHandler()).Methods("GET")
			a.Handle("/logout", auth.LogoutHandler()).Methods("POST")
			app := r.PathPrefix("/app").Subrouter()
			app.Use(auth.RequireLogin)
			app.Handle("/{page}", greet)
			return r
		},
	}
	for name, build := range routers {
		t.Run(name, func(t *testing.T) {
			pa := newPlainApp(t, provider, func(c *pipaauth.Config) {
				c.RedirectURL = strings.TrimSuffix(c.RedirectURL, "/callback") + "/auth/callback"
				c.LoginPath = "/auth/login"
			})
			app := pa.srv
			pa.mux.Handle("/", build(pa.auth))
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}

			// An API request is told where to log in: the configured LoginPath.
			req, _ := http.NewRequest("GET", app.URL+"/app/page?x=1", nil)
			req.Header.Set("Accept", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := `{"error":"login_required","login_url":"/auth/login?return_to=%2Fapp%2Fpage%3Fx%3D1"}` + "\n"; resp.StatusCode != 401 || string(body) != want {
				t.Errorf("API request: %d %q, want 401 %q", resp.StatusCode, body, want)
			}

			// A navigation goes through PiPA and lands back where it started.
			resp, err = client.Get(app.URL + "/app/page?x=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello alice@example.com" || resp.Request.URL.RequestURI() != "/app/page?x=1" {
				t.Errorf("login: %d %q at %s, want 200 greeting alice at /app/page?x=1", resp.StatusCode, body, resp.Request.URL.RequestURI())
			}
		})
	}
}
