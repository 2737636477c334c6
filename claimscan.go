package pipaauth

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The kept claims are the text of one compact JSON object that this
// package wrote (and sealed in the session): rules such as AllowClaim read
// it on every request, so it is scanned in place rather than decoded. The
// scanner still checks what it reads, and a malformed object has no claims.

// findClaim returns the JSON value of member name of the object obj.
func findClaim(obj, name string) (string, bool) {
	s := strings.TrimSpace(obj)
	if len(s) < 2 || s[0] != '{' {
		return "", false
	}
	s = s[1:]
	for {
		s = skipSpace(s)
		if s == "" || s[0] == '}' {
			return "", false
		}
		keyEnd := skipString(s)
		if keyEnd < 0 {
			return "", false
		}
		key := s[:keyEnd]
		s = skipSpace(s[keyEnd:])
		if s == "" || s[0] != ':' {
			return "", false
		}
		s = skipSpace(s[1:])
		n := skipValue(s)
		if n < 0 {
			return "", false
		}
		if stringIs(key, name) {
			return s[:n], true
		}
		s = skipSpace(s[n:])
		if s == "" {
			return "", false
		}
		switch s[0] {
		case ',':
			s = s[1:]
		case '}':
			return "", false
		default:
			return "", false
		}
	}
}

// stringIs reports whether the JSON string literal lit decodes to want.
func stringIs(lit, want string) bool {
	inner := lit[1 : len(lit)-1]
	if !strings.ContainsRune(inner, '\\') && utf8.ValidString(inner) {
		return inner == want
	}
	var got string
	return json.Unmarshal([]byte(lit), &got) == nil && got == want
}

// stringValue decodes the JSON value v when it is a string (not null).
func stringValue(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if !strings.ContainsRune(inner, '\\') && utf8.ValidString(inner) {
		return inner, true
	}
	var s string
	if json.Unmarshal([]byte(v), &s) != nil {
		return "", false
	}
	return s, true
}

// anyString reports whether the JSON value v is a string for which match is
// true, or an array holding one.
func anyString(v string, match func(string) bool) bool {
	if s, ok := stringValue(v); ok {
		return match(s)
	}
	if v == "" || v[0] != '[' {
		return false
	}
	s := skipSpace(v[1:])
	if s != "" && s[0] == ']' {
		return false
	}
	found := false
	for s != "" {
		n := skipValue(s)
		if n < 0 {
			return false
		}
		if e, ok := stringValue(s[:n]); ok && !found && match(e) {
			found = true
		}
		s = skipSpace(s[n:])
		switch {
		case s == "":
			return false
		case s[0] == ']':
			return found && strings.TrimSpace(s[1:]) == "" // a whole array, or nothing
		case s[0] != ',':
			return false
		}
		s = skipSpace(s[1:])
	}
	return false
}

// skipString returns the length of the JSON string literal at the start of
// s, or -1.
func skipString(s string) int {
	if s == "" || s[0] != '"' {
		return -1
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the length of the JSON value at the start of s, or -1.
// Scalars other than strings run to the next delimiter; json.Valid on the
// whole object at load time is not needed, as the object was written by
// this package and sealed.
func skipValue(s string) int {
	if s == "" {
		return -1
	}
	switch s[0] {
	case '"':
		return skipString(s)
	case '{', '[':
		depth := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '"':
				n := skipString(s[i:])
				if n < 0 {
					return -1
				}
				i += n - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	i := 0
	for i < len(s) && !isDelim(s[i]) {
		i++
	}
	if i == 0 {
		return -1
	}
	return i
}

// skipSpace drops the JSON whitespace at the start of s.
func skipSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isDelim reports whether c ends a number, true, false or null.
func isDelim(c byte) bool { return c == ',' || c == '}' || c == ']' || isSpace(c) }
