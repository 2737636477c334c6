// Package frameworks shows, and tests, pipaauth in web frameworks other than
// net/http's ServeMux: chi, gorilla/mux, echo and gin.
//
// chi, gorilla/mux and echo need nothing from here: the first two take
// func(http.Handler) http.Handler middleware as they are, and echo takes them
// through echo.WrapMiddleware:
//
//	e.Use(echo.WrapMiddleware(auth.RequireLogin))
//
// gin needs an adapter, Gin, because a gin middleware that writes a response
// must also call c.Abort(), or gin runs the protected handler afterwards.
package frameworks

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// Gin adapts a net/http middleware such as auth.RequireLogin or
// auth.RequireUser(allow) to gin:
//
//	r.Use(frameworks.Gin(auth.RequireLogin))
//
// When the middleware lets the request through, the rest of gin's chain runs
// inside it, with the request the middleware passed on (so
// pipaauth.UserFromContext(c.Request.Context()) returns the user). When it
// answers on its own (401, 403, a redirect to PiPA, 503), the chain is
// aborted with c.Abort(): the protected handler never runs. Without the
// Abort, gin would run it after the 401 and append the protected page to
// the error body.
//
// Copy it into your application: it is ten lines, and this module is not
// meant to be imported.
func Gin(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		passed := false
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			passed = true
			c.Request = r
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}
