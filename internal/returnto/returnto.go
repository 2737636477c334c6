// Package returnto decides which post-login destinations are safe: same-origin paths only.
//
// A return path comes from the request that needed a login (its path and
// query) or from the return_to parameter of the login page, so an attacker
// chooses it. Anything that is not plainly a path on this site is refused
// and the caller falls back to a fixed destination, usually "/". The rules
// are deliberately strict: a refused path only costs the user a landing on
// the home page, an accepted bad one is an open redirect.
//
// A return path p is valid when all of these hold:
//
//   - 1 to MaxLen bytes long;
//   - every byte is printable ASCII (0x21-0x7E): no spaces, controls or raw
//     non-ASCII (UTF-8 text must be percent-encoded), and none of
//     \ # " < > ` (backslash is a slash to browsers, a fragment is never
//     sent to a server, the others are markup);
//   - every % starts a valid escape (%XX, two hex digits);
//   - net/url parses it to a URL with no scheme, opaque part, user info,
//     host or fragment, whose path starts with "/";
//   - the path (before the first "?") and every percent-decoded form of it
//     (decoded again and again, up to 4 times, until stable; more layers
//     than that are refused): start with exactly one "/", not followed by
//     "/" or "\"; contain no "//", no backslash, no control character (C0,
//     DEL, C1), no white space (unicode.IsSpace: %20, %09, %0A, %0D,
//     U+00A0, U+2028, U+3000...), no invisible format character (Unicode
//     Cf: U+200B, U+FEFF, U+202E...), no slash or backslash look-alike
//     (U+2044, U+2215, U+FF0F, U+FF3C...); decode to valid UTF-8 (no
//     overlong forms such as %C0%AF); and are canonical: no empty segment,
//     no "." or ".." segment, also when followed by ";params" ("..;x",
//     ";x");
//   - no literal "//" anywhere, the query included (url=//evil.com and
//     next=https://evil.com are how redirect payloads are written);
//   - the query (after the first "?") is data: it cannot change the origin
//     of a relative redirect, so once decoded it may hold "//", spaces and
//     URLs: percent-encoded spaces, encoded URLs and an encoded "//"
//     (q=a%20b, next=https%3A%2F%2Fexample.com, p=%2F%2Fhost) are kept.
//     Each of its decoded forms (up to 4 layers, as for the path) must
//     still be valid UTF-8 without control characters (%00, %0A, %0D...)
//     or invisible format characters.
//
// So "/", "/admin", "/a/b/?x=1&y=two", "/search?q=caf%C3%A9",
// "/search?q=a%20b", "/sso?next=https%3A%2F%2Fapp.example%2Fx" and
// "/path;matrix=1" are valid, while "//evil.com", "/\evil.com",
// "/next?url=//evil.com", "/next?url=https://evil.com",
// "/%2F%2Fevil.com", "/%252F%252Fevil.com", "/%5Cevil.com",
// "https://evil.com", "javascript:alert(1)", "/x#frag", "/http://evil.com",
// "/a%20b" (a space in the path) and "/q?x=%0D%0A" are not. A valid path
// is redirected to byte for byte, never re-encoded.
package returnto

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest return path kept (bytes, path and query); longer
// ones fall back to "/". It is what a login attempt cookie holds (see
// session.MaxReturnToBytes).
const MaxLen = 1024

// maxDecodeRounds is how many layers of percent-encoding Valid peels off; a
// string that still changes after that many decodings is refused.
const maxDecodeRounds = 4

// Valid reports whether p is a same-origin path safe to redirect to after
// login. See the package documentation for the rules.
func Valid(p string) bool {
	if p == "" || len(p) > MaxLen || !rawOK(p) {
		return false
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.User != nil || u.Host != "" ||
		u.Fragment != "" || u.RawFragment != "" || !strings.HasPrefix(u.Path, "/") {
		return false
	}
	// The path alone, decoded: a decoded %3F must not hide a bad segment
	// behind what looks like the start of the query.
	// A literal "//" anywhere, the query included: redirect payloads
	// (url=//evil.com, next=https://evil.com) are written that way, and a
	// URL that is data in a query arrives percent-encoded.
	if strings.Contains(p, "//") {
		return false
	}
	rawPath, rawQuery, _ := strings.Cut(p, "?")
	return formsOK(rawPath) && queryOK(rawQuery)
}

// queryOK checks a query and its decoded forms: valid UTF-8, no control or
// invisible format character. Anything else in a query is data.
func queryOK(q string) bool {
	for round := 0; ; round++ {
		if !utf8.ValidString(q) {
			return false
		}
		for _, r := range q {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				return false
			}
		}
		d := unescape(q)
		if d == q {
			return true
		}
		if round == maxDecodeRounds {
			return false
		}
		q = d
	}
}

// Or returns p when Valid(p), else fallback (which the caller guarantees is
// safe, usually "/").
func Or(p, fallback string) string {
	if Valid(p) {
		return p
	}
	return fallback
}

// FromRequest returns the request's own path and query (like
// r.URL.RequestURI(), built from EscapedPath and RawQuery) when it is Valid,
// else "/".
func FromRequest(r *http.Request) string {
	if r == nil || r.URL == nil {
		return "/"
	}
	p := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	return Or(p, "/")
}

// rawOK checks the bytes of the undecoded string: printable ASCII without
// the characters that have no business in a return path, and well-formed
// percent escapes.
func rawOK(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c <= ' ' || c >= 0x7f:
			return false
		case c == '\\' || c == '#' || c == '"' || c == '<' || c == '>' || c == '`':
			return false
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
		}
	}
	return true
}

// formsOK checks the path s and each of its percent-decoded forms with
// formOK.
func formsOK(s string) bool {
	for round := 0; ; round++ {
		if !formOK(s) {
			return false
		}
		d := unescape(s)
		if d == s {
			return true
		}
		if round == maxDecodeRounds {
			return false // still encoded after maxDecodeRounds layers
		}
		s = d
	}
}

// formOK checks one form (raw or decoded) of a return path's path.
func formOK(s string) bool {
	if s == "" || s[0] != '/' || len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	if !utf8.ValidString(s) {
		return false
	}
	// "//" anywhere in the path: at the start it names a host, elsewhere
	// it is an empty segment, and "/https://evil.com" is a URL in disguise.
	if strings.Contains(s, "//") {
		return false
	}
	for _, r := range s {
		if r == '\\' || unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || slashLike(r) {
			return false
		}
	}
	return cleanPath(s)
}

// cleanPath reports whether path (which starts with "/") has no empty
// segment except a trailing one, and no "." or ".." segment; a segment's
// name is what comes before its first ";".
func cleanPath(path string) bool {
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		name, _, _ := strings.Cut(seg, ";")
		switch {
		case name == "." || name == "..":
			return false
		case name == "" && (seg != "" || i != len(segs)-1):
			return false
		}
	}
	return true
}

// slashLike reports whether r looks like, or normalises (NFKC) to, a slash
// or a backslash.
func slashLike(r rune) bool {
	switch r {
	case '\u2044', // FRACTION SLASH
		'\u2215', // DIVISION SLASH
		'\u2216', // SET MINUS
		'\u29F5', // REVERSE SOLIDUS OPERATOR
		'\u29F8', // BIG SOLIDUS
		'\u29F9', // BIG REVERSE SOLIDUS
		'\uFE68', // SMALL REVERSE SOLIDUS
		'\uFF0F', // FULLWIDTH SOLIDUS
		'\uFF3C': // FULLWIDTH REVERSE SOLIDUS
		return true
	}
	return false
}

// unescape decodes every well-formed %XX in s and leaves anything else,
// including a stray "%", as it is: the most a lenient decoder would do.
func unescape(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
