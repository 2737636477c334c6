package pipaauth

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// sameOrigin protects next with p, and also refuses, for an https
// application, an unsafe request whose Origin is the application's host
// over another scheme (http://app.example for https://app.example).
// http.CrossOriginProtection compares only the Origin's host with the
// request's when the browser sends no Sec-Fetch-Site, so a page on the
// plain-http origin (which a network attacker can serve) would pass.
// reason is the refusal's text; refusals wrap ErrCrossOrigin with 403,
// as p's.
func (a *Auth) sameOrigin(p *http.CrossOriginProtection, reason string, next http.Handler) http.Handler {
	protected := p.Handler(next)
	if !strings.HasPrefix(a.cfg.RedirectURL, "https://") {
		return protected // a plain-http application (InsecureAllowHTTP)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if r.Header.Get("Sec-Fetch-Site") == "" {
				if o := r.Header.Get("Origin"); o != "" {
					if u, err := url.Parse(o); err == nil && u.Scheme != "https" {
						a.fail(w, r, errs.New(http.StatusForbidden, errs.ErrCrossOrigin, reason, nil))
						return
					}
				}
			}
		}
		protected.ServeHTTP(w, r)
	})
}
