package callback

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/pipaauth/pipaauth/internal/errs"
)

const maxQuery = 16 << 10 // longest callback query string accepted

// callbackQuery is what the callback reads from its query string.
type callbackQuery struct {
	state, code, iss string
	err              *errs.ProviderError // the provider's error parameters, if any
}

// parseQuery reads a callback query string strictly: well-formed escapes, no
// parameter given twice, and an error code in RFC 6749's character set.
func parseQuery(raw string) (callbackQuery, error) {
	var q callbackQuery
	if len(raw) > maxQuery {
		return q, fmt.Errorf("query string is %d bytes, more than %d", len(raw), maxQuery)
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("query string: %w", err)
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return q, fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
	}
	q.state, q.code, q.iss = v.Get("state"), v.Get("code"), v.Get("iss")
	if _, ok := v["error"]; !ok {
		return q, nil
	}
	code := v.Get("error")
	if q.code != "" {
		return q, errors.New("both code and error given")
	}
	if code == "" || len(code) > 64 || !errorChars(code) {
		return q, errors.New("error parameter empty, too long or outside RFC 6749's character set")
	}
	q.err = &errs.ProviderError{Code: code, Description: v.Get("error_description"), URI: v.Get("error_uri")}
	if len(q.err.Description) > 512 || !errorChars(q.err.Description) {
		q.err.Description = "" // free text from anyone: drop what does not fit
	}
	if len(q.err.URI) > 512 || !errorChars(q.err.URI) {
		q.err.URI = ""
	}
	return q, nil
}

// errorChars reports whether s uses only %x20-21 / %x23-5B / %x5D-7E, the
// characters RFC 6749 allows in error, error_description and error_uri.
func errorChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
