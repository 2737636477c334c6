package pipaauth

import (
	"crypto/ecdsa"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/oauth2"
)

// RefreshToken refreshes the session's tokens now, whatever their expiry,
// writes the result back to the session as Token does, and returns the new
// token. Errors as Token's.
//
// It is for access tokens whose expiry is unknown (a token answer without
// expires_in, which RFC 6749 section 5.1 allows: Token then never counts
// them as expired) or that a resource server refused early (revoked, keys
// rotated): Client calls it by itself on a 401 with error="invalid_token"
// (RFC 6750 section 3.1). Within this process, concurrent calls for one
// session spend its refresh token once and share the result, as Token's
// refreshes do; a result shared that way is never the very access token
// the session held, which the caller is replacing. A refresh PiPA refuses
// (invalid_grant) ends the session and returns an error wrapping
// ErrLoginRequired. It needs Config.KeepTokens (else ErrNoTokens). Like
// Token, it writes through w: call it before writing the response. The new
// token reaches r's later Token calls only with the next request (r still
// carries the old cookie): use the token it returns.
func (a *Auth) RefreshToken(w http.ResponseWriter, r *http.Request) (*oauth2.Token, error) {
	tok, _, err := a.refreshTokenAndKey(w, r)
	return tok, err
}

// refreshTokenAndKey is RefreshToken, with the tokens' DPoP key (nil for
// Bearer tokens).
func (a *Auth) refreshTokenAndKey(w http.ResponseWriter, r *http.Request) (*oauth2.Token, *ecdsa.PrivateKey, error) {
	var o refreshOutcome
	tok, key, err := a.token(w, r, &o, true)
	if a.cfg.OnEvent != nil {
		a.reportToken(r, &o, err)
	}
	return tok, key, publicError(err)
}

// bearerTransport sends each request with the session's access token, and
// on a 401 invalid_token refreshes once and retries once: Client's
// transport.
type bearerTransport struct {
	a    *Auth
	w    http.ResponseWriter
	r    *http.Request
	base http.RoundTripper
	// holder hands the DPoP key of the token last used to the DPoP
	// transport below (base), which proves it; nil key: Bearer.
	holder *keyHolder

	mu        sync.Mutex
	tok       *oauth2.Token // the token last used; nil before the first request
	refreshed bool          // the one forced refresh of this Client is done
}

func (t *bearerTransport) token() (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != nil && t.tok.Valid() {
		return t.tok, nil
	}
	tok, key, err := t.a.tokenAndKey(t.w, t.r)
	if err != nil {
		return nil, err
	}
	t.tok = tok
	t.holder.set(key)
	return tok, nil
}

// refresh refreshes the session's tokens after used was refused; only the
// first refusal seen by this Client refreshes. It reports false when this
// Client already refreshed (the caller then hands the 401 back), and
// the token to use otherwise.
func (t *bearerTransport) refresh(used *oauth2.Token) (*oauth2.Token, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refreshed {
		if t.tok != nil && t.tok.AccessToken != used.AccessToken {
			// Another request of this Client refreshed meanwhile.
			return t.tok, true, nil
		}
		return nil, false, nil
	}
	t.refreshed = true
	tok, key, err := t.a.refreshTokenAndKey(t.w, t.r)
	if err != nil {
		return nil, false, err
	}
	t.tok = tok
	t.holder.set(key)
	return tok, true, nil
}

// RoundTrip sends req with the access token. A 401 whose WWW-Authenticate
// says invalid_token makes it refresh (once per Client) and, when req's
// body can be sent again (no body, or GetBody), retry once with the new
// token; any other 401, and the retry's answer whatever it is, goes back to
// the caller. A failed refresh is returned as the error (wrapping
// ErrLoginRequired when the session ended).
func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.token()
	if err != nil {
		closeBody(req)
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := t.base.RoundTrip(withToken(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !invalidToken(resp.Header) {
		return resp, err
	}
	fresh, ok, err := t.refresh(tok)
	if err != nil {
		drain(resp)
		return nil, err
	}
	if !ok || !replayable {
		// The 401 goes back; the next request carries the new token.
		return resp, nil
	}
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	drain(resp)
	return t.base.RoundTrip(withToken(req, fresh, body))
}

// withToken returns a copy of req with tok in its Authorization header and
// body as its body; req itself is not changed (http.RoundTripper).
func withToken(req *http.Request, tok *oauth2.Token, body io.ReadCloser) *http.Request {
	c := req.Clone(req.Context())
	c.Body = body
	tok.SetAuthHeader(c)
	return c
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drain reads a little of resp's body, so the connection can be reused,
// and closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// invalidToken reports whether h's WWW-Authenticate challenges include a
// Bearer (RFC 6750 section 3) or DPoP (RFC 9449 section 7.1) challenge with
// error="invalid_token": the access token is expired, revoked or otherwise
// refused, which a refresh can mend. Other errors (insufficient_scope,
// invalid_request) and challenges without an error are not.
func invalidToken(h http.Header) bool {
	for _, line := range h.Values("Www-Authenticate") {
		for _, c := range parseChallenges(line) {
			if (strings.EqualFold(c.scheme, "Bearer") || strings.EqualFold(c.scheme, "DPoP")) && c.params["error"] == "invalid_token" {
				return true
			}
		}
	}
	return false
}

// challenge is one challenge of a WWW-Authenticate header.
type challenge struct {
	scheme string
	params map[string]string // auth-param names in lower case
}

var errChallenge = errors.New("malformed challenge")

// parseChallenges reads a WWW-Authenticate field value (RFC 9110 section
// 11.6.1): comma-separated challenges, each a scheme and either a token68
// or comma-separated auth-params (token=token or token=quoted-string). It
// returns the challenges read before anything malformed.
func parseChallenges(s string) []challenge {
	var out []challenge
	p := &challengeParser{s: s}
	for {
		p.skip(", \t")
		if p.done() {
			return out
		}
		scheme := p.token()
		if scheme == "" {
			return out
		}
		c := challenge{scheme: scheme, params: map[string]string{}}
		next := false // stopped at the next challenge's scheme
		for !next {
			p.skip(" \t")
			save := p.i
			name := p.token()
			p.skip(" \t")
			if name == "" || p.done() || p.s[p.i] != '=' {
				// The next challenge's scheme, the end, or a token68.
				p.i, next = save, name != ""
				break
			}
			p.i++ // '='
			p.skip(" \t")
			v, err := p.value()
			if err != nil {
				return append(out, c)
			}
			c.params[strings.ToLower(name)] = v
			p.skip(" \t")
			if p.done() || p.s[p.i] != ',' {
				break
			}
			p.i++ // ','
			p.skip(", \t")
		}
		out = append(out, c)
		if next {
			continue
		}
		// A token68 or stray text: skip to the next comma.
		for !p.done() && p.s[p.i] != ',' {
			p.i++
		}
	}
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }

func (p *challengeParser) skip(set string) {
	for !p.done() && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads an RFC 9110 token.
func (p *challengeParser) token() string {
	start := p.i
	for !p.done() && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted-string.
func (p *challengeParser) value() (string, error) {
	if p.done() {
		return "", errChallenge
	}
	if p.s[p.i] != '"' {
		v := p.token()
		if v == "" {
			return "", errChallenge
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.done() {
				return "", errChallenge
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", errChallenge
}

func isTchar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
