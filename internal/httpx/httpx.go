// Package httpx holds pipaauth's HTTP plumbing: the client it uses to talk
// to the provider (bounded in time and response size, never following
// redirects) and how it tells an API client from a browser.
package httpx

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// DefaultTimeout bounds each request of a client that has no timeout.
	DefaultTimeout = 10 * time.Second
	// MaxBody is the largest response body read from the provider.
	MaxBody = 1 << 20
)

// ErrBodyTooLarge is returned by reads past MaxBody.
var ErrBodyTooLarge = fmt.Errorf("pipaauth: provider response larger than %d bytes", MaxBody)

// Client returns a copy of c (or of a new client when c is nil) whose
// responses are capped at MaxBody, whose requests time out after
// DefaultTimeout unless c sets its own timeout, and which does not follow
// redirects: discovery, JWKS and token endpoints have no business
// redirecting, and following a redirect would resend a client secret.
func Client(c *http.Client) *http.Client {
	var cc http.Client
	if c != nil {
		cc = *c
	}
	if cc.Timeout == 0 {
		cc.Timeout = DefaultTimeout
	}
	base := cc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = capped{base}
	cc.CheckRedirect = func(*http.Request, []*http.Request) error {
		return errors.New("pipaauth: the provider answered with a redirect, which is not followed")
	}
	return &cc
}

type capped struct{ base http.RoundTripper }

func (c capped) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limited{rc: resp.Body, left: MaxBody}
	return resp, nil
}

type limited struct {
	rc   io.ReadCloser
	left int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One more byte tells a body of exactly MaxBody from a longer one.
		var b [1]byte
		n, err := l.rc.Read(b[:])
		if n > 0 {
			return 0, ErrBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limited) Close() error { return l.rc.Close() }

// WantsJSON reports whether r's Accept header asks for JSON and not for
// HTML: an API client, which gets JSON errors and never a login redirect.
func WantsJSON(r *http.Request) bool {
	accept := strings.ToLower(strings.Join(r.Header.Values("Accept"), ","))
	return strings.Contains(accept, "json") && !strings.Contains(accept, "text/html")
}
