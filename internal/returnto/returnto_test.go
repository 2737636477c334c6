package returnto

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

// accepted are return paths Valid must keep.
var accepted = []string{
	"/",
	"/admin",
	"/a/b/c?x=1&y=two",
	"/a/b/",
	"/items/42?sort=desc&page=3",
	"/search?q=caf%C3%A9",           // percent-encoded UTF-8 letters
	"/%E2%82%AC/%E6%97%A5%E6%9C%AC", // "/€/日本"
	"/path;matrix=1",
	"/a;b=1/c;d=2?e=f",
	"/a+b?c=d+e", // a literal "+" is not a space in a path
	"/discount%2550",
	"/search?q=100%25zz", // "100%zz": a stray "%" once decoded is left alone
	"/search?q=%23tag",   // an encoded "#" in the query is data
	"/~user/file.txt",
	"/.well-known/openid-configuration",
	"/..a/b..", // dots, but no dot segment
	"/files/dir%2Fsub",
	"/next?to=/inbox", // a path in the query is fine, only "//" is not
	"/q?a=1&b=&c",
	"/q?",
	"/a?x[]=1&y={2}|^3",
	"/javascript:alert(1)", // a path on this site, not a URL with a scheme
	"/a%25252541",          // four layers of encoding: "/aA" after four decodings
	"/" + strings.Repeat("a", MaxLen-1),
	"/search?q=a%20b",             // an encoded space in the query
	"/search?q=a+b&r=%2B",         // a plus, and an encoded one
	"/next?url=%2F%2Fapp.example", // an encoded "//" in the query is data
	"/sso?next=https%3A%2F%2Fapp.example%2Fx%3Fy%3D1", // an encoded URL in the query
	"/q?a=%25252541",    // encoded four times in the query
	"/q?a=%5C%EF%BC%8F", // a backslash and a slash look-alike, as data
	"/q?" + strings.Repeat("x", MaxLen-3),
}

// refused are return paths Valid must turn down, with the reason.
var refused = []struct{ p, why string }{
	{"", "empty"},
	{"admin", "relative"},
	{"./admin", "relative"},
	{"../admin", "relative"},
	{"?x=1", "query only"},
	{"@evil.com", "relative, user info"},
	{"//evil.com", "protocol-relative host"},
	{"///evil.com", "protocol-relative host"},
	{"//user@evil.com/", "protocol-relative host with user info"},
	{"/\\evil.com", "backslash host"},
	{"\\/evil.com", "leading backslash"},
	{"\\\\evil.com", "leading backslashes"},
	{"/a\\b", "backslash"},
	{"/%2f%2fevil.com", "encoded protocol-relative"},
	{"/%2F/evil.com", "encoded protocol-relative"},
	{"/%252f%252fevil.com", "double-encoded protocol-relative"},
	{"/%25252f%25252fevil.com", "triple-encoded protocol-relative"},
	{"/%5cevil.com", "encoded backslash"},
	{"/%255cevil.com", "double-encoded backslash"},
	{"/%2f%5cevil.com", "encoded slash-backslash"},
	{"/a\tb", "tab"},
	{"/a\nb", "newline"},
	{"/a\rb", "carriage return"},
	{"/a\x00b", "NUL"},
	{"/a\x7fb", "DEL"},
	{"/\t/evil.com", "tab that browsers drop, leaving //evil.com"},
	{" /a", "leading space"},
	{"/a ", "trailing space"},
	{"/a%09b", "encoded tab"},
	{"/%09/evil.com", "encoded tab before a host"},
	{"/a%0d%0aSet-Cookie:x", "encoded CRLF"},
	{"/a%00b", "encoded NUL"},
	{"/a%7fb", "encoded DEL"},
	{"/a%C2%85b", "encoded NEL (C1 control)"},
	{"/a%20b", "encoded space"},
	{"/a%2520b", "double-encoded space"},
	{"/a b", "space"},
	{"/a%C2%A0b", "encoded no-break space"},
	{"/a%E2%80%A8b", "encoded line separator"},
	{"/a%E3%80%80b", "encoded ideographic space"},
	{"/a%E1%9A%80b", "encoded ogham space mark"},
	{"/a%E2%80%AEb", "encoded right-to-left override"},
	{"/a%E2%80%8Bb", "encoded zero-width space"},
	{"/a%EF%BB%BFb", "encoded byte-order mark"},
	{"/a\u00a0b", "raw non-ASCII"},
	{"/a\u2028b", "raw line separator"},
	{"/a\u3000b", "raw ideographic space"},
	{"/café", "raw non-ASCII letter (must be percent-encoded)"},
	{"/%ff", "invalid UTF-8 after decoding"},
	{"/%C0%AF", "overlong UTF-8 slash"},
	{"/%E0%80%AFevil.com", "overlong UTF-8 slash"},
	{"/%EF%BC%8Fevil.com", "fullwidth solidus"},
	{"/%EF%BC%BCevil.com", "fullwidth reverse solidus"},
	{"/%E2%88%95evil.com", "division slash"},
	{"javascript:alert(1)", "scheme"},
	{"JaVaScRiPt:alert(1)", "scheme"},
	{"data:text/html,x", "scheme"},
	{"http://evil.com", "scheme and host"},
	{"https://evil.com/", "scheme and host"},
	{"https:evil.com", "scheme"},
	{"https:/evil.com", "scheme"},
	{"http:\\\\evil.com", "scheme, backslashes"},
	{"/x#frag", "fragment"},
	{"/x#", "empty fragment"},
	{"/https://evil.com", "scheme-like path"},
	{"/a//b", "empty segment"},
	{"/a/%2F/b", "encoded empty segment"},
	{"/;x/b", "empty segment name before ;params"},
	{"/next?url=//evil.com", "protocol-relative URL in the query"},
	{"/q?a=%0D%0ASet-Cookie:x", "encoded CRLF in the query"},
	{"/q?a=%00", "encoded NUL in the query"},
	{"/q?a=%250A", "double-encoded newline in the query"},
	{"/q?a=%C2%85", "encoded C1 control in the query"},
	{"/q?a=%E2%80%AE", "encoded right-to-left override in the query"},
	{"/q?a=%ff", "invalid UTF-8 in the query"},
	{"/q?a=%25252525252541", "encoded more than four times in the query"},
	{"/q?a=b c", "raw space in the query"},
	{"/q?" + strings.Repeat("x", MaxLen-2), "over MaxLen with the query"},
	{"/next?url=https://evil.com", "URL in the query"},
	{"/a/../b", "dot-dot segment"},
	{"/a/..", "trailing dot-dot segment"},
	{"/..", "dot-dot segment"},
	{"/..;/evil", "dot-dot segment with ;params"},
	{"/a/%2e%2e/b", "encoded dot-dot segment"},
	{"/a/.%2E/b", "half-encoded dot-dot segment"},
	{"/a/%252e%252e/b", "double-encoded dot-dot segment"},
	{"/./a", "dot segment"},
	{"/a/.", "trailing dot segment"},
	{"/%2e", "encoded dot segment"},
	{"/a%3F/%2e%2e/b", "encoded dot-dot segment behind an encoded ?"},
	{`/"x"`, "quote"},
	{"/<script>", "angle brackets"},
	{"/`x`", "backtick"},
	{"/%zz", "invalid escape"},
	{"/%2", "truncated escape"},
	{"/a%", "truncated escape"},
	{"/%%32%66%%32%66evil.com", "invalid escape hiding an encoded //"},
	{"/" + strings.Repeat("a", MaxLen), "over MaxLen"},
	{"/%25252525252f%25252525252fevil.com", "encoded more than four times"},
	{"/a%2525252541", "encoded five times"},
}

func TestValid(t *testing.T) {
	for _, p := range accepted {
		if !Valid(p) {
			t.Errorf("Valid(%q) = false, want true", p)
		}
		if got := Or(p, "/"); got != p {
			t.Errorf("Or(%q) = %q, want it unchanged", p, got)
		}
	}
	for _, tt := range refused {
		if Valid(tt.p) {
			t.Errorf("Valid(%q) = true, want false (%s)", tt.p, tt.why)
		}
		if got := Or(tt.p, "/"); got != "/" {
			t.Errorf("Or(%q) = %q, want %q", tt.p, got, "/")
		}
	}
}

func TestOrFallback(t *testing.T) {
	if got := Or("//evil.com", "/home"); got != "/home" {
		t.Errorf("Or(//evil.com, /home) = %q, want /home", got)
	}
	if got := Or("/inbox", "/home"); got != "/inbox" {
		t.Errorf("Or(/inbox, /home) = %q, want /inbox", got)
	}
}

// corpusPath is the open-redirect corpus, relative to this package's
// directory (where go test runs); see testdata/README.md.
const corpusPath = "../../testdata/openredirects.txt"

// corpusLines is the number of lines in corpusPath, the first one empty.
const corpusLines = 559

// payloads reads the open-redirect corpus, one payload a line; the first
// payload is the empty string.
func payloads(tb testing.TB) []string {
	tb.Helper()
	b, err := os.ReadFile(corpusPath)
	if err != nil {
		tb.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "\r\n", "\n") // a CRLF checkout
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestOpenRedirectCorpus(t *testing.T) {
	lines := payloads(t)
	nonEmpty := 0
	for _, l := range lines {
		if l != "" {
			nonEmpty++
		}
	}
	// The upstream file starts with an empty line: 559 lines, 558 of them
	// non-empty. A truncated or edited copy fails here.
	if len(lines) != corpusLines || nonEmpty != corpusLines-1 || lines[0] != "" {
		t.Fatalf("%s has %d lines (%d non-empty), want %d (%d non-empty, the first empty): is it complete?",
			corpusPath, len(lines), nonEmpty, corpusLines, corpusLines-1)
	}
	for _, line := range lines {
		p, err := url.QueryUnescape(line)
		if err != nil {
			p = line
		}
		for _, v := range []string{p, line} {
			if Valid(v) {
				t.Errorf("Valid(%q) = true for open-redirect payload %q", v, line)
			}
			if got := Or(v, "/"); got != "/" {
				t.Errorf("Or(%q) = %q, want /", v, got)
			}
		}
		// The payload as a request target: whatever a server parses out
		// of it, FromRequest keeps at most a path on this site.
		if u, err := url.Parse(line); err == nil {
			r := &http.Request{Method: "GET", URL: u}
			if got := FromRequest(r); !Valid(got) {
				t.Errorf("FromRequest(%q) = %q, not Valid", line, got)
			} else if got != "/" && got != u.RequestURI() {
				t.Errorf("FromRequest(%q) = %q, want / or %q", line, got, u.RequestURI())
			}
		}
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		target, want string
	}{
		{"/admin?x=1", "/admin?x=1"},
		{"/", "/"},
		{"/a/b/c?x=1&y=two", "/a/b/c?x=1&y=two"},
		{"/a%20b", "/"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/files/dir%2Fsub", "/files/dir%2Fsub"}, // EscapedPath keeps the client's encoding
		{"/a?next=//evil.com", "/"},
		{"/a?next=%2F%2Fapp.example", "/a?next=%2F%2Fapp.example"},
		{"/search?q=a%20b&r=c+d", "/search?q=a%20b&r=c+d"}, // byte for byte: %20 stays %20
		{"/a%20b?q=1", "/"},
		{"//evil.com", "/"},                 // path "//evil.com": no host in a request target
		{"///evil.com", "/"},                // likewise
		{"http://evil.com/x?y=1", "/x?y=1"}, // absolute form: only the path and query are kept
		{"http://evil.com", "/"},            // absolute form without a path
		{"/" + strings.Repeat("a", MaxLen), "/"},
		{"/" + strings.Repeat("a", MaxLen-1), "/" + strings.Repeat("a", MaxLen-1)},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		if got := FromRequest(r); got != tt.want {
			t.Errorf("FromRequest(%q) = %q, want %q", tt.target, got, tt.want)
		}
	}

	// URLs no server would parse, built by hand (a handler or a proxy may
	// rewrite r.URL).
	built := []struct {
		name string
		u    *url.URL
		want string
	}{
		{"//evil.com", &url.URL{Path: "//evil.com"}, "/"},
		{`/\evil.com`, &url.URL{Path: `/\evil.com`}, "/"},                     // escaped to /%5Cevil.com, a backslash once decoded
		{"/%2F%2Fevil.com literally", &url.URL{Path: "/%2F%2Fevil.com"}, "/"}, // escaped to /%252F%252Fevil.com
		{"/a b", &url.URL{Path: "/a b"}, "/"},                                 // escaped to /a%20b: strict about spaces
		{"/café", &url.URL{Path: "/café"}, "/caf%C3%A9"},
		{"opaque", &url.URL{Scheme: "https", Opaque: "//evil.com/x"}, "/"},
		{"host only", &url.URL{Scheme: "https", Host: "evil.com"}, "/"},
		{"query with tab", &url.URL{Path: "/a", RawQuery: "x=\t"}, "/"},
		{"force query", &url.URL{Path: "/a", ForceQuery: true}, "/a"},
		{"raw path", &url.URL{Path: "/a/b", RawPath: "/a%2Fb"}, "/a%2Fb"},
	}
	for _, tt := range built {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = tt.u
		if got := FromRequest(r); got != tt.want {
			t.Errorf("FromRequest(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}

	r := httptest.NewRequest("GET", "/", nil)
	r.URL = nil
	if got := FromRequest(r); got != "/" {
		t.Errorf("FromRequest(nil URL) = %q, want /", got)
	}
	if got := FromRequest(nil); got != "/" {
		t.Errorf("FromRequest(nil) = %q, want /", got)
	}
}

// decodedForms returns p and what repeated decoding with dec makes of it,
// until it is stable or fails to decode.
func decodedForms(p string, dec func(string) (string, error)) []string {
	forms := []string{p}
	for range 8 {
		d, err := dec(p)
		if err != nil || d == p {
			break
		}
		forms = append(forms, d)
		p = d
	}
	return forms
}

func FuzzValid(f *testing.F) {
	for _, p := range accepted {
		f.Add(p)
	}
	for _, tt := range refused {
		f.Add(tt.p)
	}
	for i, line := range payloads(f) {
		if i%7 == 0 {
			f.Add(line)
		}
	}
	base, err := url.Parse("https://app.example/")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !Valid(Or(p, "/")) {
			t.Fatalf("Or(%q) is not Valid", p)
		}
		if !Valid(p) {
			return
		}
		if len(p) > MaxLen {
			t.Fatalf("Valid(%q) but it is %d bytes long", p, len(p))
		}
		forms := decodedForms(p, url.PathUnescape)
		forms = append(forms, decodedForms(p, url.QueryUnescape)[1:]...)
		// What a browser does to a Location before resolving it: drop tabs
		// and newlines, read backslashes as slashes.
		forms = append(forms, strings.ReplaceAll(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(p), `\`, "/"))
		for _, v := range forms {
			if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "/\\") {
				t.Fatalf("Valid(%q) but %q is not a single-slash path", p, v)
			}
			u, err := url.Parse(v)
			if err != nil {
				continue // a decoded form need not parse as a URL; the raw one did
			}
			if u.Scheme != "" || u.Host != "" || u.User != nil {
				t.Fatalf("Valid(%q) but %q parses with scheme %q host %q", p, v, u.Scheme, u.Host)
			}
			if got := base.ResolveReference(u); got.Host != "app.example" || got.Scheme != "https" || got.User != nil {
				t.Fatalf("Valid(%q) but %q resolves to %q", p, v, got)
			}
		}
	})
}

func ExampleOr() {
	fmt.Println(Or("/inbox?page=2", "/"))
	fmt.Println(Or("//evil.example/", "/"))
	fmt.Println(Or("/%2F%2Fevil.example/", "/"))
	fmt.Println(Or("https://evil.example/", "/"))
	// Output:
	// /inbox?page=2
	// /
	// /
	// /
}
