package callback

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// readResponse reads the authorization response: from the query string of
// a GET, or, with FormPost (OAuth 2.0 Form Post Response Mode), from the
// form body of a POST that PiPA's page submitted. Every refusal is a 4xx
// *errs.Error ready for fail.
func (f *Flow) readResponse(w http.ResponseWriter, r *http.Request) (callbackQuery, *errs.Error) {
	if !f.cfg.FormPost {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			return callbackQuery{}, errs.New(http.StatusMethodNotAllowed, errs.ErrMethod, "The login callback only accepts GET.", nil)
		}
		q, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			return q, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback was malformed.", err)
		}
		return q, nil
	}
	if r.Method != http.MethodPost {
		if v, err := url.ParseQuery(r.URL.RawQuery); err != nil || v.Has("code") || v.Has("state") || v.Has("error") {
			// Some providers ignore response_mode: the code came in the
			// URL (history, logs, Referer), which this mode exists to
			// avoid. Refused before anything is used; the attempt stays
			// for a retry.
			return callbackQuery{}, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback,
				"PiPA sent the login response in the URL instead of posting it. Please try again; if it persists, the application's ResponseMode setting does not match PiPA's.",
				errors.New("the authorization response arrived in the query string although Config.ResponseMode is form_post: the provider ignored response_mode=form_post; register form_post for this client at the provider, or leave ResponseMode empty"))
		}
		w.Header().Set("Allow", http.MethodPost)
		return callbackQuery{}, errs.New(http.StatusMethodNotAllowed, errs.ErrMethod, "The login callback only accepts the form PiPA posts.", nil)
	}
	if err := f.checkFormPostOrigin(r); err != nil {
		return callbackQuery{}, errs.New(http.StatusForbidden, errs.ErrCrossOrigin, "The login response must come from PiPA's page.", err)
	}
	if r.URL.RawQuery != "" {
		return callbackQuery{}, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback was malformed.", errors.New("a form_post callback with a query string"))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return callbackQuery{}, errs.New(http.StatusUnsupportedMediaType, errs.ErrInvalidCallback, "The login callback was malformed.", fmt.Errorf("a form_post callback with Content-Type %q", r.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxQuery+1))
	if err != nil {
		return callbackQuery{}, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback was malformed.", fmt.Errorf("reading the posted response: %w", err))
	}
	q, err := parseQuery(string(body))
	if err != nil {
		return q, errs.New(http.StatusBadRequest, errs.ErrInvalidCallback, "The login callback was malformed.", fmt.Errorf("posted response: %w", err))
	}
	return q, nil
}

// checkFormPostOrigin admits a POST only as PiPA's page submits it: a
// top-level navigation (Sec-Fetch-Mode navigate and Sec-Fetch-Dest
// document, when the browser sends them; never from a frame or a script)
// whose Origin is one of FormPostOrigins (PiPA's issuer and authorization
// endpoint) or "null" (browsers send it after a redirect chain that
// crossed origins). A POST without Origin is refused: every browser sends
// one on a cross-origin form submission. The state, nonce, PKCE and
// single-use checks that follow are the query form's.
func (f *Flow) checkFormPostOrigin(r *http.Request) error {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return fmt.Errorf("form_post callback with Sec-Fetch-Mode %q, not a top-level navigation", m)
	}
	if d := r.Header.Get("Sec-Fetch-Dest"); d != "" && d != "document" {
		return fmt.Errorf("form_post callback with Sec-Fetch-Dest %q, not a top-level document", d)
	}
	origin, ok := r.Header["Origin"]
	switch {
	case !ok || len(origin) != 1 || origin[0] == "":
		return errors.New("form_post callback without an Origin header")
	case origin[0] == "null":
		return nil
	case !slices.Contains(f.cfg.FormPostOrigins, strings.ToLower(origin[0])):
		return fmt.Errorf("form_post callback from origin %q, not PiPA's %q", origin[0], f.cfg.FormPostOrigins)
	}
	return nil
}
