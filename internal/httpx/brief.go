package httpx

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// maxBrief is the longest error message Brief keeps, in bytes.
const maxBrief = 200

// statusBody matches the "<status>: <body>" shape in which go-oidc reports
// an answer it did not expect (discovery, UserInfo, JWKS), possibly behind
// a prefix such as "oidc: get keys failed: ".
var statusBody = regexp.MustCompile(`(^|: )([1-5][0-9]{2})( [A-Za-z][A-Za-z '-]{0,40})?[: ]`)

// Brief returns err's message without the provider's response body, which
// go-oidc puts in its errors verbatim and which may echo a token or be a
// megabyte of HTML: cut after the HTTP status when the message has one,
// else to maxBrief bytes, with control characters replaced. It returns that
// status too (0 when none). The result does not wrap err: nothing
// of the body can be reached through it. Use it only on errors already
// told apart from timeouts and network failures (errors.Is needs err).
func Brief(err error) (status int, brief error) {
	msg := err.Error()
	if m := statusBody.FindStringSubmatchIndex(msg); m != nil {
		status, _ = strconv.Atoi(msg[m[4]:m[5]])
		end := m[5]
		if m[6] >= 0 {
			end = m[7]
		}
		if len(msg) > end {
			msg = msg[:end] + " (response body not logged)"
		}
	}
	if len(msg) > maxBrief {
		msg = msg[:maxBrief] + "…"
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	return status, errors.New(msg)
}
