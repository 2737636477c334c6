package pipaauth

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/httpx"
)

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Status}} {{.Text}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5}</style></head>
<body>
<h1>{{.Status}} {{.Text}}</h1>
<p>{{.Reason}}</p>
{{if .Retry}}<p><a href="{{.Retry}}">Try logging in again</a></p>{{end}}
<p><a href="/">Back to the home page</a></p>
</body>
</html>
`))

// DefaultErrorHandler returns the error handler used when
// Config.ErrorHandler is nil. It answers with err's status and a page holding
// the status text and the safe Reason of an *Error (never err.Error(), which
// may name internals), plus a link to loginPath after a failed login. API
// clients (Accept asks for JSON only) get {"error": ..., "message": ...}.
func DefaultErrorHandler(loginPath string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		err = publicError(err) // a no-op for the errors the handlers pass
		status := statusOf(err)
		reason := "Something went wrong."
		var e *Error
		if errors.As(err, &e) && e.Reason != "" {
			reason = e.Reason
		}
		h := w.Header()
		h.Del("Content-Length")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if httpx.WantsJSON(r) {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			}{strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_")), reason})
			return
		}
		retry := ""
		if Retryable(err) {
			retry = loginPath
			if e != nil && strings.HasPrefix(e.Retry, "/") && !strings.HasPrefix(e.Retry, "//") {
				retry = e.Retry
			}
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(status)
		errorPage.Execute(w, struct {
			Status       int
			Text, Reason string
			Retry        string
		}{status, http.StatusText(status), reason, retry})
	}
}

// Retryable reports whether starting a new login may fix err: the provider
// refused or failed the login, the callback was stale or malformed, the
// tokens could not be verified, or (LazyDiscovery) PiPA's discovery document
// was not there yet. Error handlers use it to offer "try again".
func Retryable(err error) bool {
	var pe *ProviderError
	return errors.As(err, &pe) || errors.Is(err, errs.ErrInvalidState) || errors.Is(err, errs.ErrInvalidCallback) ||
		errors.Is(err, errs.ErrExchange) || errors.Is(err, errs.ErrInvalidToken) || errors.Is(err, errs.ErrLoginRequired) ||
		errors.Is(err, errs.ErrDiscovery)
}

// WantsJSON reports whether r asks for JSON and not HTML (its Accept header
// names json and not text/html): an API client. DefaultErrorHandler answers
// such requests with JSON, and RequireLogin never redirects them; custom
// error handlers use it to decide the same way.
func WantsJSON(r *http.Request) bool { return httpx.WantsJSON(r) }
