package session

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// cookieBackend keeps the whole session in the cookie, sealed by
// securecookie (HMAC-SHA256, then AES-CTR) with the binary serializer.
type cookieBackend struct {
	opt    Options
	name   string
	writer *securecookie.SecureCookie   // first pair, no length limit: save measures the whole cookie itself
	codecs []*securecookie.SecureCookie // every pair, in order, for reading
	cache  *cache[*Data]
}

func newCookieBackend(opt Options) *cookieBackend {
	b := &cookieBackend{opt: opt, name: opt.Name}
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

func (b *cookieBackend) save(w http.ResponseWriter, _ *http.Request, d *Data, c *http.Cookie, _ bool) error {
	value, err := b.writer.Encode(b.name, d)
	if err != nil {
		return fmt.Errorf("session: sealing the session: %w", err)
	}
	if err := writeCookie(w, c, value, "a server-side SessionStore, or KeepTokens off"); err != nil {
		return err
	}
	b.cache.set(value, d.Clone())
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

func (b *cookieBackend) clear(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Add("Set-Cookie", cookieFor(b.opt, "", -1).String())
	return nil
}

// cookieValue finds the first cookie called name in h without allocating,
// unlike (*http.Request).Cookie, which parses every cookie.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, v != ""
		}
	}
	return "", false
}
