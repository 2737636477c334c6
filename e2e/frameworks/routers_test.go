package frameworks_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"
	"github.com/labstack/echo/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/e2e/frameworks"
	"github.com/pipaauth/pipaauth/e2e/internal/e2etest"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no debug banner on stdout
	os.Exit(m.Run())
}

// routes are what every router under test mounts: the login handlers under
// /auth, pages for any logged-in user under /app, and pages that
// RequireUser(allow) keeps for some users under /admin.
type routes struct {
	auth  *pipaauth.Auth
	page  http.Handler // greets the user; counts its calls
	allow func(pipaauth.User) bool
}

// The handlers and middleware have the standard net/http shapes, so any
// router mounts them, at any path, with its own grouping idiom. gin is the
// exception that needs an adapter (frameworks.Gin).
var routers = map[string]func(rt routes) http.Handler{
	"ServeMux patterns": func(rt routes) http.Handler {
		m := http.NewServeMux()
		m.Handle("GET /auth/login", rt.auth.LoginHandler())
		m.Handle("GET /auth/callback", rt.auth.CallbackHandler())
		m.Handle("POST /auth/logout", rt.auth.LogoutHandler())
		m.Handle("GET /app/{page}", rt.auth.RequireLogin(rt.page))
		m.Handle("GET /admin/{page}", rt.auth.RequireUser(rt.allow)(rt.page))
		return m
	},
	"chi": func(rt routes) http.Handler {
		r := chi.NewRouter()
		r.Route("/auth", func(r chi.Router) {
			r.Method("GET", "/login", rt.auth.LoginHandler())
			r.Method("GET", "/callback", rt.auth.CallbackHandler())
			r.Method("POST", "/logout", rt.auth.LogoutHandler())
		})
		r.Route("/app", func(r chi.Router) {
			r.Use(rt.auth.RequireLogin)
			r.Method("GET", "/{page}", rt.page)
		})
		r.Route("/admin", func(r chi.Router) {
			r.Use(rt.auth.RequireUser(rt.allow))
			r.Method("GET", "/{page}", rt.page)
		})
		return r
	},
	"gorilla/mux": func(rt routes) http.Handler {
		r := mux.NewRouter()
		a := r.PathPrefix("/auth").Subrouter()
		a.Handle("/login", rt.auth.LoginHandler()).Methods("GET")
		a.Handle("/callback", rt.auth.CallbackHandler()).Methods("GET")
		a.Handle("/logout", rt.auth.LogoutHandler()).Methods("POST")
		app := r.PathPrefix("/app").Subrouter()
		app.Use(rt.auth.RequireLogin)
		app.Handle("/{page}", rt.page).Methods("GET")
		admin := r.PathPrefix("/admin").Subrouter()
		admin.Use(rt.auth.RequireUser(rt.allow))
		admin.Handle("/{page}", rt.page).Methods("GET")
		return r
	},
	"echo": func(rt routes) http.Handler {
		e := echo.New()
		a := e.Group("/auth")
		a.GET("/login", echo.WrapHandler(rt.auth.LoginHandler()))
		a.GET("/callback", echo.WrapHandler(rt.auth.CallbackHandler()))
		a.POST("/logout", echo.WrapHandler(rt.auth.LogoutHandler()))
		app := e.Group("/app", echo.WrapMiddleware(rt.auth.RequireLogin))
		app.GET("/:page", echo.WrapHandler(rt.page))
		admin := e.Group("/admin", echo.WrapMiddleware(rt.auth.RequireUser(rt.allow)))
		admin.GET("/:page", echo.WrapHandler(rt.page))
		return e
	},
	"gin": func(rt routes) http.Handler {
		r := gin.New()
		a := r.Group("/auth")
		a.GET("/login", gin.WrapH(rt.auth.LoginHandler()))
		a.GET("/callback", gin.WrapH(rt.auth.CallbackHandler()))
		a.POST("/logout", gin.WrapH(rt.auth.LogoutHandler()))
		app := r.Group("/app", frameworks.Gin(rt.auth.RequireLogin))
		app.GET("/:page", gin.WrapH(rt.page))
		admin := r.Group("/admin", frameworks.Gin(rt.auth.RequireUser(rt.allow)))
		admin.GET("/:page", gin.WrapH(rt.page))
		return r
	},
}

func TestRouters(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	for name, build := range routers {
		t.Run(name, func(t *testing.T) {
			app := e2etest.NewApp(t, provider, func(c *pipaauth.Config) {
				c.RedirectURL = strings.TrimSuffix(c.RedirectURL, "/callback") + "/auth/callback"
				c.LoginPath = "/auth/login"
			})
			var pageRuns atomic.Int32
			page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				pageRuns.Add(1)
				u, ok := pipaauth.UserFromContext(r.Context())
				if !ok {
					http.Error(w, "no user in the context", http.StatusInternalServerError)
					return
				}
				io.WriteString(w, "hello "+u.Email)
			})
			app.Mux.Handle("/", build(routes{auth: app.Auth, page: page, allow: pipaauth.AllowEmails("bob@example.com")}))
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}
			get := func(t *testing.T, path string, header ...string) (int, string, string) {
				t.Helper()
				req, err := http.NewRequest("GET", app.Srv.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body), resp.Request.URL.RequestURI()
			}

			// An API request is told where to log in (the configured
			// LoginPath), and the protected handler does not run.
			status, body, _ := get(t, "/app/page?x=1", "Accept", "application/json")
			if want := `{"error":"login_required","login_url":"/auth/login?return_to=%2Fapp%2Fpage%3Fx%3D1"}` + "\n"; status != 401 || body != want {
				t.Errorf("API request: %d %q, want 401 %q", status, body, want)
			}
			if n := pageRuns.Load(); n != 0 {
				t.Errorf("the protected handler ran %d times after a 401, want 0", n)
			}

			// A navigation goes through PiPA and lands back where it started.
			status, body, at := get(t, "/app/page?x=1")
			if status != 200 || body != "hello alice@example.com" || at != "/app/page?x=1" {
				t.Errorf("login: %d %q at %s, want 200 greeting alice at /app/page?x=1", status, body, at)
			}
			if n := pageRuns.Load(); n != 1 {
				t.Errorf("the protected handler ran %d times after one login, want 1", n)
			}

			// A logged-in user that RequireUser refuses gets 403, and the
			// protected handler does not run.
			status, body, _ = get(t, "/admin/page")
			if status != 403 || strings.Contains(body, "hello") {
				t.Errorf("refused user: %d %q, want 403 without the page", status, body)
			}
			if n := pageRuns.Load(); n != 1 {
				t.Errorf("the protected handler ran %d times, want 1: it ran after a 403", n)
			}

			// Logout ends the session: the next API request gets 401 again.
			resp, err := client.PostForm(app.Srv.URL+"/auth/logout", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if status, body, _ := get(t, "/app/page", "Accept", "application/json"); status != 401 {
				t.Errorf("after logout: %d %q, want 401", status, body)
			}
			if n := pageRuns.Load(); n != 1 {
				t.Errorf("the protected handler ran %d times, want 1: it ran after logout", n)
			}
		})
	}
}
