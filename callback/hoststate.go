package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/returnto"
)

// A login that starts on one host name (www.example.com, an internal name)
// and comes back to RedirectURL's (example.com) loses its attempt cookie,
// which the browser keeps for the first host. To say so instead of "unknown
// login", the state carries, signed, the host the login started on and its
// return path: random "." payload "." mac, where payload is
// base64url(host "\n" returnTo) and mac the first 128 bits of
// HMAC-SHA256(StateKeys[i], random "." payload), base64url. No cookie is
// needed to read it, and nothing in it is acted on but to explain and to
// offer a new login on RedirectURL's host (never a redirect: behind a proxy
// that rewrites Host, the start host is not the browser's).

// maxStateReturnTo is the longest return path carried in a state; longer
// ones are carried as "/" (the attempt cookie has the real one): the state
// is also in the attempt cookie, whose room is counted (session.MaxCookieHeader).
const maxStateReturnTo = 128

func stateMAC(key []byte, signed string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// newState returns a fresh state for a login started on host towards
// returnTo.
func (f *Flow) newState(host, returnTo string) string {
	r := random()
	if len(f.cfg.StateKeys) == 0 {
		return r
	}
	if len(returnTo) > maxStateReturnTo {
		returnTo = "/"
	}
	if len(host) > 255 {
		host = ""
	}
	signed := r + "." + base64.RawURLEncoding.EncodeToString([]byte(host+"\n"+returnTo))
	return signed + "." + stateMAC(f.cfg.StateKeys[0], signed)
}

// stateOrigin reads the start host and return path of a state newState
// made, reporting false for any other (forged, from another deployment's
// keys, or from before states carried them).
func (f *Flow) stateOrigin(state string) (host, returnTo string, ok bool) {
	i := strings.LastIndexByte(state, '.')
	if i < 0 || strings.Count(state, ".") != 2 {
		return "", "", false
	}
	signed, mac := state[:i], state[i+1:]
	valid := false
	for _, k := range f.cfg.StateKeys {
		valid = valid || hmac.Equal([]byte(stateMAC(k, signed)), []byte(mac))
	}
	if !valid {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(signed[strings.IndexByte(signed, '.')+1:])
	if err != nil {
		return "", "", false
	}
	host, returnTo, ok = strings.Cut(string(raw), "\n")
	return host, returnTo, ok
}

// otherHost answers, when it applies, a callback without a usable attempt
// for a login that started on another host than RedirectURL's: it logs
// both hosts and the fix, and shows a page whose link starts a new login
// here, on RedirectURL's host, towards the page first asked for. It
// reports whether it answered.
func (f *Flow) otherHost(w http.ResponseWriter, r *http.Request, state string) bool {
	start, returnTo, ok := f.stateOrigin(state)
	if !ok || start == "" || strings.EqualFold(start, f.redirectHost) {
		return false
	}
	f.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn,
		"pipaauth: a login started on another host name than RedirectURL's, so the browser did not send the login's attempt cookie back; serve the application on one host name (RedirectURL's), or redirect the other host name to it before any login starts (behind a proxy that rewrites Host, start_host is the proxy's backend name: then the attempt cookie was lost otherwise, such as cookies blocked)",
		slog.String("start_host", start), slog.String("redirect_host", f.redirectHost))
	retry := f.cfg.LoginPath
	if retry != "" {
		retry += "?return_to=" + url.QueryEscape(returnto.Or(returnTo, "/"))
	}
	// The page names no host: start_host is whatever Host header the
	// request that started the login carried, which anyone can choose.
	e := errs.New(http.StatusBadRequest, errs.ErrInvalidState, "This login started on another address of this site than the one it came back to ("+f.redirectHost+"). Please log in again here.", nil)
	e.Retry = retry
	f.fail(w, r, e)
	return true
}
