package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// Side cookies (cookie mode). The session cookie, sent with every request,
// holds who is logged in and nothing more. What only some handlers need
// lives in cookies of its own, sealed by securecookie like the session:
//
//   - The ID token (for id_token_hint at logout) in <prefix><base>-idt0 and,
//     when one cookie is not enough, -idt1, with Path=Options.LogoutPath: a
//     browser sends them to the logout handler and nowhere else. As __Host-
//     needs Path=/, their prefix is __Secure- (Secure, HttpOnly,
//     SameSite=Lax); without Secure (InsecureAllowHTTP) there is none.
//   - The kept tokens in <prefix><base>-tok0 to -tok3 (as many as they
//     need), Path=/ and the session cookie's __Host- prefix: Token, TokenSource
//     and Client may be called from any handler. The guard never opens them.
//
// <base> is the session cookie's name without its __Host- prefix, so two
// applications with different session cookie names never share side
// cookies. One sealed value is split over a kind's cookies, so a piece
// from elsewhere breaks the MAC. Each value carries the session's binding
// handle (Data.bind), a random 128-bit value sealed in the session cookie
// too and new at every login: a side cookie of another session (another
// browser's, planted through a sibling domain or mixed by a proxy; an
// older login's) is never used. A side cookie that is missing, unreadable
// or bound to another session means no tokens or no ID token, never a
// failed request: the session itself is the session cookie.
//
// Payload (before sealing): a kind byte ('i' or 't'), sideV1, the 16-byte
// handle, then the ID token, or the access token, refresh token, token
// type, expiry and issue time (milliseconds) and DPoP key. A token that is a JWS or JWE in
// compact form (three or five base64url segments) is stored with its
// segments decoded, a quarter smaller, and encoded again on reading; any
// other token is stored as it is.
const (
	sideV1 = 1

	idtChunks = 2 // ID token cookies at most
	tokChunks = 4 // token cookies at most

	// cookieRoom is what a Cookie header may carry: MaxCookieHeader less
	// "Cookie: ".
	cookieRoom = MaxCookieHeader - len("Cookie: ")
	// attemptRoom is kept free on every path, where the session and token
	// cookies go, for the login attempt cookies (the largest attempt, with
	// a return path of MaxReturnToBytes, takes about 2.3 KB).
	attemptRoom = 2560
	// logoutRoom is kept free on the logout path, where the ID token
	// cookies join the session and token cookies, for one ordinary login
	// attempt cookie.
	logoutRoom = 512

	// DefaultLogoutPath is Options.LogoutPath when empty.
	// For wiring only: applications use package pipaauth.
	DefaultLogoutPath = "/logout"
)

// sideKind is one kind of side cookie.
type sideKind struct {
	tag   byte     // first payload byte
	names []string // chunk cookie names, in order
	path  string
	host  bool // the names carry __Host- (Path=/)
}

// sideJar seals, splits, finds and opens side cookies.
type sideJar struct {
	opt      Options
	idt, tok sideKind
	writer   *securecookie.SecureCookie   // first pair, no length limit: the jar splits and measures
	codecs   []*securecookie.SecureCookie // every pair, for reading
}

func newSideJar(opt Options) *sideJar {
	base := strings.TrimPrefix(strings.TrimPrefix(opt.Name, "__Host-"), "__Secure-")
	idtPrefix, tokPrefix := "", ""
	if opt.Secure {
		idtPrefix, tokPrefix = "__Secure-", "__Host-"
	}
	path := opt.LogoutPath
	if path == "" {
		path = DefaultLogoutPath
	}
	j := &sideJar{opt: opt,
		idt: sideKind{tag: 'i', path: path},
		tok: sideKind{tag: 't', path: "/", host: opt.Secure},
	}
	for i := range idtChunks {
		j.idt.names = append(j.idt.names, idtPrefix+base+"-idt"+strconv.Itoa(i))
	}
	for i := range tokChunks {
		j.tok.names = append(j.tok.names, tokPrefix+base+"-tok"+strconv.Itoa(i))
	}
	maxAge := int((opt.Lifetime + 24*time.Hour) / time.Second)
	codec := func(hashKey, blockKey []byte, maxLength int) *securecookie.SecureCookie {
		c := securecookie.New(hashKey, blockKey)
		c.SetSerializer(securecookie.NopEncoder{})
		c.MaxAge(maxAge)
		c.MaxLength(maxLength)
		return c
	}
	for i := 0; i+1 < len(opt.KeyPairs); i += 2 {
		j.codecs = append(j.codecs, codec(opt.KeyPairs[i], opt.KeyPairs[i+1], tokChunks*MaxCookieBytes))
	}
	j.writer = codec(opt.KeyPairs[0], opt.KeyPairs[1], 0)
	return j
}

func (j *sideJar) cookie(k *sideKind, name, value string, maxAge int) *http.Cookie {
	return sessions.NewCookie(name, value, &sessions.Options{
		Path:     k.path,
		MaxAge:   maxAge,
		Secure:   j.opt.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// build seals payload and splits it over k's cookies. It returns their
// Set-Cookie headers, how many cookies it used and the bytes they add to a
// Cookie header (name=value and "; " each). It fails with
// ErrCookieTooLarge when k's cookies cannot hold the value.
func (j *sideJar) build(k *sideKind, payload []byte, maxAge int) (headers []string, used, sent int, err error) {
	value, err := j.writer.Encode(k.names[0], payload)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("session: sealing a side cookie: %w", err)
	}
	total := len(value)
	for _, name := range k.names {
		if value == "" {
			break
		}
		c := j.cookie(k, name, "", maxAge)
		n := min(MaxCookieBytes-len(c.String()), len(value))
		c.Value = value[:n]
		headers = append(headers, c.String())
		sent += len(name) + 1 + n + len("; ")
		value = value[n:]
		used++
	}
	if value != "" {
		return nil, 0, 0, fmt.Errorf("%w: a sealed value of %d bytes does not fit %d cookies", errs.ErrCookieTooLarge, total, len(k.names))
	}
	return headers, used, sent, nil
}

// deletions returns the Set-Cookie headers deleting k's cookies from index
// from on: those r carries, or all of them when all is set (the ID token
// cookies, which a request outside the logout path does not show).
func (j *sideJar) deletions(r *http.Request, k *sideKind, from int, all bool) []string {
	var out []string
	for _, name := range k.names[from:] {
		if all || r != nil && hasCookie(r.Header, name) {
			out = append(out, j.cookie(k, name, "", -1).String())
		}
	}
	return out
}

// maxTries bounds the chunk combinations open tries: a request may carry
// a name twice (a cookie planted for a parent domain beside ours).
const maxTries = 16

// open finds k's sealed value in r, opens it and checks that it is bound
// to h. It returns the payload after the handle; (nil, nil) when r carries
// none of k's cookies; an error wrapping ErrInvalid when none of the
// values it carries opens and is bound to h.
func (j *sideJar) open(r *http.Request, k *sideKind, h handle) (*reader, error) {
	cands := make([][]string, 0, len(k.names))
	for _, name := range k.names {
		vs := cookieValues(r.Header, name, 3)
		if len(vs) == 0 {
			break
		}
		cands = append(cands, vs)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	tries := 0
	var found *reader
	foreign := false
	// Depth first over the chunks, shortest values first: a value sealed
	// over fewer cookies than a stale piece left behind still opens.
	var walk func(depth int, prefix string) bool
	walk = func(depth int, prefix string) bool {
		for _, v := range cands[depth] {
			value := prefix + v
			if tries >= maxTries {
				return false
			}
			tries++
			if rd, bound, ok := j.decode(k, value, h); ok {
				if bound {
					found = rd
					return true
				}
				foreign = true
			}
			if depth+1 < len(cands) && walk(depth+1, value) {
				return true
			}
		}
		return false
	}
	walk(0, "")
	switch {
	case found != nil:
		return found, nil
	case foreign:
		return nil, fmt.Errorf("%w: the %s cookies belong to another session", ErrInvalid, k.names[0])
	}
	return nil, fmt.Errorf("%w: the %s cookies do not open", ErrInvalid, k.names[0])
}

// decode opens value, reporting whether it opened and whether it is bound
// to h.
func (j *sideJar) decode(k *sideKind, value string, h handle) (rd *reader, bound, ok bool) {
	for _, c := range j.codecs {
		var raw []byte
		if c.Decode(k.names[0], value, &raw) != nil {
			continue
		}
		rd := &reader{b: raw}
		var got handle
		if rd.byte() != k.tag || rd.byte() != sideV1 || len(rd.b) < len(got) || rd.err {
			return nil, false, false
		}
		rd.b = rd.b[copy(got[:], rd.b):]
		return rd, subtle.ConstantTimeCompare(got[:], h[:]) == 1, true
	}
	return nil, false, false
}

func (j *sideJar) header(k *sideKind, h handle) []byte {
	b := make([]byte, 0, 512)
	b = append(b, k.tag, sideV1)
	return append(b, h[:]...)
}

// tokenCookies returns the headers writing t bound to h (deleting the
// token cookies r carries when t is nil or needs fewer), and the bytes
// they add to a Cookie header.
func (j *sideJar) tokenCookies(r *http.Request, t *Tokens, h handle, maxAge int) ([]string, int, error) {
	if t == nil {
		return j.deletions(r, &j.tok, 0, false), 0, nil
	}
	b := j.header(&j.tok, h)
	b = appendToken(b, t.AccessToken)
	b = appendToken(b, t.RefreshToken)
	b = appendString(b, t.TokenType)
	b = appendMillis(b, t.Expiry)
	b = appendMillis(b, t.IssuedAt)
	b = appendString(b, string(t.DPoPKey))
	headers, used, sent, err := j.build(&j.tok, b, maxAge)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: the kept tokens (access token %d bytes, refresh token %d bytes) do not fit %d cookies: use a server-side SessionStore", errs.ErrCookieTooLarge, len(t.AccessToken), len(t.RefreshToken), tokChunks)
	}
	return append(headers, j.deletions(r, &j.tok, used, false)...), sent, nil
}

// idTokenCookies returns the headers writing the ID token bound to h
// (deleting the other ID token cookies), and the bytes they add to a
// Cookie header on the logout path.
func (j *sideJar) idTokenCookies(idToken string, h handle, maxAge int) ([]string, int, error) {
	if idToken == "" {
		return j.deletions(nil, &j.idt, 0, true), 0, nil
	}
	b := j.header(&j.idt, h)
	b = appendToken(b, idToken)
	headers, used, sent, err := j.build(&j.idt, b, maxAge)
	if err != nil {
		return nil, 0, err
	}
	return append(headers, j.deletions(nil, &j.idt, used, true)...), sent, nil
}

func (j *sideJar) readTokens(rd *reader) (*Tokens, error) {
	t := &Tokens{
		AccessToken:  rd.token(),
		RefreshToken: rd.token(),
		TokenType:    rd.string(),
		Expiry:       rd.millis(),
		IssuedAt:     rd.millis(),
	}
	if k := rd.stringMax(maxDPoPKey); k != "" {
		t.DPoPKey = []byte(k)
	}
	if rd.err || len(rd.b) != 0 {
		return nil, fmt.Errorf("%w: malformed token cookies", ErrInvalid)
	}
	return t, nil
}

// newHandle returns a fresh binding handle.
func newHandle() handle {
	var h handle
	rand.Read(h[:]) // never fails (crypto/rand)
	return h
}

// appendToken writes a token, its base64url segments decoded when it is a
// JWS or JWE in compact form that encodes back to the same text.
func appendToken(b []byte, s string) []byte {
	if segs, ok := compactSegments(s); ok {
		b = append(b, 1, byte(len(segs)))
		for _, seg := range segs {
			b = appendString(b, seg)
		}
		return b
	}
	b = append(b, 0)
	return appendString(b, s)
}

// compactSegments splits a JWS (3 parts) or JWE (5 parts) in compact form
// into its decoded segments, when each one encodes back exactly.
func compactSegments(s string) ([]string, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 && len(parts) != 5 {
		return nil, false
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		raw, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != p {
			return nil, false
		}
		out[i] = string(raw)
	}
	return out, true
}

// token reads what appendToken wrote.
func (r *reader) token() string {
	switch r.byte() {
	case 0:
		return r.stringMax(maxToken)
	case 1:
		n := int(r.byte())
		if n != 3 && n != 5 {
			r.err = true
			return ""
		}
		var sb strings.Builder
		for i := range n {
			if i > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(base64.RawURLEncoding.EncodeToString([]byte(r.stringMax(maxToken))))
		}
		if sb.Len() > maxToken {
			r.err = true
		}
		return sb.String()
	}
	r.err = true
	return ""
}

// hasCookie reports whether h carries a cookie called name.
func hasCookie(h http.Header, name string) bool {
	_, ok := cookieValue(h, name)
	return ok
}

// cookieValues returns the values of up to max cookies called name in h,
// in the order the browser sent them.
func cookieValues(h http.Header, name string, max int) []string {
	var out []string
	for _, line := range h["Cookie"] {
		for len(line) > 0 && len(out) < max {
			var part string
			part, line, _ = strings.Cut(line, ";")
			// Spaces and tabs only, as cookieValue and net/http trim.
			k, v, ok := strings.Cut(trimRightSpace(trimLeftSpace(part)), "=")
			if !ok || k != name || v == "" {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			out = append(out, v)
		}
	}
	return out
}

// LoadTokens returns the tokens kept for d, the logged-in session r
// carries as Load returned it: from the store record (or a cookie sealed
// before format 5), or, in cookie mode, from the token cookies, which only
// this reads. It returns (nil, nil) when the session keeps none, and (nil,
// err) with err wrapping ErrInvalid when the token cookies are there but
// unusable (tampered, another session's): treat both as no tokens, never as
// a reason to end the session.
// For wiring only: applications use package pipaauth.
func (m *Manager) LoadTokens(r *http.Request, d *Data) (*Tokens, error) {
	if !d.LoggedIn() {
		return nil, nil
	}
	if d.Tokens != nil {
		return d.Tokens, nil
	}
	b, ok := m.backend.(*cookieBackend)
	if !ok || d.bind == (handle{}) || r == nil {
		return nil, nil
	}
	rd, err := b.side.open(r, &b.side.tok, d.bind)
	if rd == nil || err != nil {
		return nil, err
	}
	return b.side.readTokens(rd)
}

// LoadIDToken returns the raw ID token of d's login, for id_token_hint:
// from the store record (or a cookie sealed before format 5), or, in
// cookie mode, from the ID token cookies, which browsers send to
// Options.LogoutPath only. Results as LoadTokens: "" when there is none,
// an error wrapping ErrInvalid when its cookies are unusable.
// For wiring only: applications use package pipaauth.
func (m *Manager) LoadIDToken(r *http.Request, d *Data) (string, error) {
	if !d.LoggedIn() {
		return "", nil
	}
	if d.IDToken != "" {
		return d.IDToken, nil
	}
	b, ok := m.backend.(*cookieBackend)
	if !ok || d.bind == (handle{}) || r == nil {
		return "", nil
	}
	rd, err := b.side.open(r, &b.side.idt, d.bind)
	if rd == nil || err != nil {
		return "", err
	}
	idt := rd.token()
	if rd.err || len(rd.b) != 0 || idt == "" {
		return "", fmt.Errorf("%w: malformed ID token cookies", ErrInvalid)
	}
	return idt, nil
}

// tokenCookieBytes is what the token cookies r carries take of its Cookie
// header beyond what attemptBudget sets aside for the session cookie (the
// session cookie is far smaller than MaxCookieBytes since format 5): the
// login attempt cookies get the rest.
func (m *Manager) tokenCookieBytes(r *http.Request) int {
	b, ok := m.backend.(*cookieBackend)
	if !ok || r == nil {
		return 0
	}
	n := 0
	if v, ok := cookieValue(r.Header, m.opt.Name); ok {
		n += len(m.opt.Name) + 1 + len(v) + len("; ")
	}
	for _, name := range b.side.tok.names {
		for _, v := range cookieValues(r.Header, name, 3) {
			n += len(name) + 1 + len(v) + len("; ")
		}
	}
	return max(0, n-MaxCookieBytes)
}
