package session

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// cookieBackend keeps the session in cookies, sealed by securecookie
// (HMAC-SHA256, then AES-CTR) with the binary serializer: who is logged in
// in the session cookie, the ID token and the kept tokens in side cookies
// bound to it (side.go).
type cookieBackend struct {
	opt    Options
	name   string
	side   *sideJar
	writer *securecookie.SecureCookie   // first pair, no length limit: save measures the whole cookie itself
	codecs []*securecookie.SecureCookie // every pair, in order, for reading
	cache  *cache[*Data]
}

func newCookieBackend(opt Options) *cookieBackend {
	b := &cookieBackend{opt: opt, name: opt.Name, side: newSideJar(opt)}
	// securecookie checks its own timestamp too; give it the session
	// lifetime plus a day of slack, as the Manager's checks are the precise
	// ones.
	maxAge := int((opt.Lifetime + 24*time.Hour) / time.Second)
	codec := func(hashKey, blockKey []byte, maxLength int) *securecookie.SecureCookie {
		c := securecookie.New(hashKey, blockKey)
		c.SetSerializer(serializer{})
		c.MaxAge(maxAge)
		c.MaxLength(maxLength)
		return c
	}
	for i := 0; i < len(opt.KeyPairs); i += 2 {
		b.codecs = append(b.codecs, codec(opt.KeyPairs[i], opt.KeyPairs[i+1], MaxCookieBytes))
	}
	b.writer = codec(opt.KeyPairs[0], opt.KeyPairs[1], 0)
	b.cache = newCache[*Data](cacheSize(opt.CacheSize))
	return b
}

func (b *cookieBackend) load(r *http.Request) (*Data, error) {
	value, ok := cookieValue(r.Header, b.name)
	if !ok {
		return nil, nil
	}
	if d, ok := b.cache.get(value); ok {
		return d, nil
	}
	d := new(Data)
	if err := b.decode(value, d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	b.cache.set(value, d)
	return d, nil
}

func (b *cookieBackend) decode(value string, d *Data) error {
	var err error
	for _, c := range b.codecs {
		if err = c.Decode(b.name, value, d); err == nil {
			return nil
		}
	}
	return err
}

// save writes the session cookie with d's identity. The side cookies are
// written when the binding handle is new (a login, a Data never saved, a
// session sealed before format 5 rewritten in the new layout): the ID
// token and the tokens d holds, deleting any others; and otherwise only
// the token cookies, when d holds tokens (a refresh put them there: Load
// never does in cookie mode). Nothing is written unless all of it fits:
// each cookie MaxCookieBytes, and the whole Cookie header MaxCookieHeader
// with room left for login attempt cookies. An ID token that does not fit
// is ErrCookieTooLarge, like tokens that do not: the callback then logs in
// without it.
func (b *cookieBackend) save(w http.ResponseWriter, r *http.Request, d *Data, c *http.Cookie, renew bool) error {
	id := d.identity()
	fresh := renew || id.bind == (handle{})
	if fresh {
		id.bind = newHandle()
	}
	value, err := b.writer.Encode(b.name, id)
	if err != nil {
		return fmt.Errorf("session: sealing the session: %w", err)
	}
	c.Value = value
	headers := []string{c.String()}
	if n := len(headers[0]); n > MaxCookieBytes {
		return fmt.Errorf("%w (%d bytes): shorten the cookie name, or keep fewer claims", errs.ErrCookieTooLarge, n)
	}
	sent := len(b.name) + 1 + len(value)
	if fresh || d.Tokens != nil {
		th, n, err := b.side.tokenCookies(r, d.Tokens, id.bind, c.MaxAge)
		if err != nil {
			return err
		}
		if sent+n > cookieRoom-attemptRoom {
			return fmt.Errorf("%w: the session and token cookies would take %d bytes of every Cookie header, more than %d: use a server-side SessionStore", errs.ErrCookieTooLarge, sent+n, cookieRoom-attemptRoom)
		}
		headers = append(headers, th...)
		sent += n
	}
	switch {
	case fresh:
		ih, n, err := b.side.idTokenCookies(d.IDToken, id.bind, c.MaxAge)
		if err == nil && sent+n > cookieRoom-logoutRoom {
			err = fmt.Errorf("%w: with the ID token the logout path's Cookie header would take %d bytes, more than %d", errs.ErrCookieTooLarge, sent+n, cookieRoom-logoutRoom)
		}
		if err != nil {
			return err
		}
		headers = append(headers, ih...)
	case d.IDToken != "":
		// A refresh brought a newer ID token: it replaces the one at
		// LogoutPath. One that does not fit leaves the earlier one, which
		// still serves as id_token_hint (RP-Initiated Logout 1.0 section 2
		// accepts an expired one): a refresh never fails for the hint.
		if ih, n, err := b.side.idTokenCookies(d.IDToken, id.bind, c.MaxAge); err == nil && sent+n <= cookieRoom-logoutRoom {
			headers = append(headers, ih...)
		}
	}
	for _, h := range headers {
		w.Header().Add("Set-Cookie", h)
	}
	b.cache.set(value, id)
	return nil
}

// writeCookie adds c with value to w, unless its Set-Cookie header would be
// over MaxCookieBytes: then it writes nothing and returns an error wrapping
// ErrCookieTooLarge that says what to do (fix).
func writeCookie(w http.ResponseWriter, c *http.Cookie, value, fix string) error {
	c.Value = value
	header := c.String()
	if n := len(header); n > MaxCookieBytes {
		return fmt.Errorf("%w (%d bytes): %s", errs.ErrCookieTooLarge, n, fix)
	}
	w.Header().Add("Set-Cookie", header)
	return nil
}

// clear deletes the session cookie and every side cookie: the token
// cookies r carries, and the ID token cookies whether r shows them or not
// (it does only on the logout path).
func (b *cookieBackend) clear(w http.ResponseWriter, r *http.Request) error {
	w.Header().Add("Set-Cookie", cookieFor(b.opt, "", -1).String())
	for _, h := range b.side.deletions(r, &b.side.tok, 0, false) {
		w.Header().Add("Set-Cookie", h)
	}
	for _, h := range b.side.deletions(nil, &b.side.idt, 0, true) {
		w.Header().Add("Set-Cookie", h)
	}
	return nil
}

// cookieValue finds the first cookie called name in h without allocating,
// unlike (*http.Request).Cookie, which parses every cookie. It reads the
// Cookie header as RFC 6265 section 5.4 writes it ("a=1; b=2"), allowing
// spaces and tabs around each pair; a value in double quotes loses them.
// It runs on every guarded request, so it compares names in place and
// looks for a pair's end only once.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			line = trimLeftSpace(line)
			end := strings.IndexByte(line, ';')
			if len(line) > len(name) && line[len(name)] == '=' && line[:len(name)] == name {
				v := line[len(name)+1:]
				if end >= 0 {
					v = line[len(name)+1 : end]
				}
				v = trimRightSpace(v)
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, v != ""
			}
			if end < 0 {
				break
			}
			line = line[end+1:]
		}
	}
	return "", false
}

// trimLeftSpace and trimRightSpace trim the spaces and tabs RFC 6265's
// grammar allows around a cookie pair (OWS).
func trimLeftSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func trimRightSpace(s string) string {
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
