package pipaauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/callback"
	"github.com/pipaauth/pipaauth/internal/errs"
)

// Pushed authorization requests (RFC 9126): the login start sends the
// authorization parameters to PiPA with client authentication, and the
// browser carries only the request_uri PiPA answers with.

// maxRequestURI bounds the request_uri accepted from PiPA.
const maxRequestURI = 2048

// pusher returns the push of ha's pushed authorization endpoint, nil when
// logins do not push.
func (a *Auth) pusher(ha *highAssurance) callback.PushFunc {
	if ha.par == "" {
		return nil
	}
	return func(ctx context.Context, params url.Values) (string, error) {
		requestURI, e := a.push(ctx, ha, params)
		if e != nil {
			return "", e
		}
		return requestURI, nil // not e: a nil *errs.Error is a non-nil error
	}
}

// parError is a failed push: 503 when PiPA could not be reached or did not
// answer in time, 502 when it refused or answered what cannot be read.
func parError(status int, reason string, err error) *errs.Error {
	return errs.New(status, errs.ErrExchange, reason, fmt.Errorf("pushed authorization request: %w", err))
}

func (a *Auth) push(ctx context.Context, ha *highAssurance, params url.Values) (string, *errs.Error) {
	// The token endpoint's client authentication serves here too (RFC
	// 9126 section 2); with private_key_jwt the client's transport adds the
	// assertion.
	basic := ha.assertion == nil && ha.style == oauth2.AuthStyleInHeader
	if ha.assertion == nil && !basic {
		params.Set("client_id", a.cfg.ClientID)
		params.Set("client_secret", a.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ha.par, strings.NewReader(params.Encode()))
	if err != nil {
		return "", parError(http.StatusInternalServerError, "The login could not be started.", err)
	}
	if basic {
		req.SetBasicAuth(url.QueryEscape(a.cfg.ClientID), url.QueryEscape(a.cfg.ClientSecret))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := ha.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = context.DeadlineExceeded // the URL error may hold the request
		}
		return "", parError(http.StatusServiceUnavailable, "Logging in is unavailable right now: PiPA could not be reached. Please try again in a moment.", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", parError(http.StatusBadGateway, "PiPA sent an answer this application cannot read. Please try again later.", err)
	}
	var out struct {
		RequestURI string  `json:"request_uri"`
		ExpiresIn  float64 `json:"expires_in"`
		Error      string  `json:"error"`
	}
	jsonErr := json.Unmarshal(body, &out)
	switch {
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		code := out.Error
		if jsonErr != nil || code == "" || len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool { return r < ' ' || r > '~' }) {
			code = "no OAuth error code"
		}
		status := http.StatusBadGateway
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
			status = http.StatusServiceUnavailable
		}
		cause := fmt.Errorf("the endpoint answered %d %q", resp.StatusCode, out.Error)
		if code == "invalid_client" {
			// A configuration mistake, not a passing failure: say which.
			cause = fmt.Errorf("%w: PiPA did not accept the client's authentication: check ClientAssertionKey and ClientAssertionKeyID (the key and kid registered at PiPA), or ClientSecret", cause)
		}
		return "", parError(status, "PiPA refused the login request ("+code+"). Please try again later.", cause)
	case jsonErr != nil:
		return "", parError(http.StatusBadGateway, "PiPA sent an answer this application cannot read. Please try again later.", jsonErr)
	case out.RequestURI == "" || len(out.RequestURI) > maxRequestURI || strings.ContainsFunc(out.RequestURI, func(r rune) bool { return r <= ' ' || r > '~' }):
		return "", parError(http.StatusBadGateway, "PiPA sent an answer this application cannot read. Please try again later.", errors.New("the answer has no usable request_uri"))
	}
	// expires_in bounds nothing here: the attempt cookie lives
	// LoginAttemptTTL, and PiPA refuses an expired request_uri itself.
	return out.RequestURI, nil
}
