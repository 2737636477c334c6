package callback

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// ErrRefreshRefused is wrapped by Refresh when the provider refused the
// refresh token (revoked, expired, reused): the session is over.
// For wiring only: applications use package pipaauth.
var ErrRefreshRefused = errors.New("pipaauth: refresh token refused")

// refreshMemo is how long the result of a refresh is kept for requests that
// still carry the refresh token it spent (parallel requests of one browser
// whose cookie predates the refresh).
const refreshMemo = 2 * time.Minute

// unsavedMemo is how long the result of a refresh whose new tokens could not
// be saved (KeepUnsaved) is kept: the next request of that session still
// carries the spent refresh token, and must get what PiPA last issued rather
// than spend the old token again, which a provider with reuse detection
// punishes by revoking the whole token family.
const unsavedMemo = 24 * time.Hour

// refreshes makes sure that, within this process, a refresh token is spent
// once: concurrent callers share one request, and later callers holding the
// same (now rotated) token get its result, or its refusal, for refreshMemo.
// A transient failure is shared by the callers waiting for it only.
type refreshes struct {
	mu    sync.Mutex
	calls map[[sha256.Size]byte]*refreshCall
}

type refreshCall struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
	end  time.Time // when the call finished
	keep time.Duration
}

// Refresh trades refreshToken for new tokens. Concurrent and recent calls
// with the same refresh token share one request to the provider. subject is
// the session's user id: a refreshed ID token must name the same sub (and the
// same iss, OpenID Connect Core 12.2), and is checked as a login's is (see
// checkRefreshed). The token returned carries the verified refreshed ID
// token as Extra("id_token"), when there is one and it could be checked.
//
// Its errors wrap ErrRefreshRefused when the session is over: an OAuth error
// in the answer, whatever its status line (but server_error and
// temporarily_unavailable), any other 4xx, a refreshed ID token for another
// sub or iss, or an answer that cannot be read (the refresh token may be
// spent and its successor unknown). A refreshed ID token that fails another
// check (signature, algorithm, aud, azp, exp, iat...) fails the refresh with
// an error wrapping pipaauth.ErrInvalidToken: its tokens are not used, the
// session stays. A network failure, a timeout or a 5xx without a refusal
// code is temporary, wrapping pipaauth.ErrExchange only. A refreshed ID token
// that cannot be checked because the provider's JWKS cannot be fetched is
// no error: the new tokens are returned (without it) and a warning logged.
// For wiring only: applications use package pipaauth.
func (f *Flow) Refresh(ctx context.Context, refreshToken, subject string) (*oauth2.Token, error) {
	return f.RefreshStale(ctx, refreshToken, subject, "")
}

// RefreshStale is Refresh for a caller that holds the access token stale
// and knows it is no longer accepted (a resource server answered 401
// invalid_token): a remembered result that hands back stale is not shared
// but replaced by a new refresh, which concurrent callers still share.
// stale "" is Refresh.
// For wiring only: applications use package pipaauth.
func (f *Flow) RefreshStale(ctx context.Context, refreshToken, subject, stale string) (*oauth2.Token, error) {
	key := sha256.Sum256([]byte(refreshToken))
	now := f.cfg.Now()
	f.refresh.mu.Lock()
	if f.refresh.calls == nil {
		f.refresh.calls = make(map[[sha256.Size]byte]*refreshCall)
	}
	for k, c := range f.refresh.calls {
		if keep := max(c.keep, refreshMemo); !c.end.IsZero() && now.Sub(c.end) > keep {
			delete(f.refresh.calls, k)
		}
	}
	c, ok := f.refresh.calls[key]
	if ok && stale != "" && !c.end.IsZero() && c.err == nil && c.tok != nil && c.tok.AccessToken == stale {
		ok = false // the remembered result is the token just refused
	}
	if !ok {
		c = &refreshCall{done: make(chan struct{})}
		f.refresh.calls[key] = c
	}
	f.refresh.mu.Unlock()
	if !ok {
		// The request runs to its end even if this caller goes away: others
		// may be waiting for it, and a spent refresh token is gone.
		tok, err := f.refreshNow(context.WithoutCancel(ctx), refreshToken, subject)
		f.refresh.mu.Lock()
		c.tok, c.err = tok, err
		c.end = f.cfg.Now()
		if c.err != nil && !errors.Is(c.err, ErrRefreshRefused) {
			// A transient failure (5xx, timeout) is not remembered: the
			// next caller tries again. (A timeout may still have spent the
			// token at the provider; a retry then ends as a refusal.)
			delete(f.refresh.calls, key)
		}
		f.refresh.mu.Unlock()
		close(c.done)
		// The result is this caller's even if its ctx ended meanwhile: the
		// caller saves it or keeps it unsaved (RFC 9700 section 4.14.2).
		return tok, err
	}
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
	}
	select {
	case <-c.done:
		// Finished as this caller gave up: the result wins, never a coin
		// toss between the two.
		return c.tok, c.err
	default:
	}
	// This caller leaves before the result and cannot save it: whatever
	// PiPA issues is kept as unsaved for the session's next request.
	f.refresh.mu.Lock()
	c.keep = unsavedMemo
	f.refresh.mu.Unlock()
	return nil, errs.New(http.StatusGatewayTimeout, errs.ErrExchange, "PiPA did not answer in time.", ctx.Err())
}

// KeepUnsaved marks the refresh of refreshToken as not saved: its result is
// kept for 24 hours instead of 2 minutes, so that the next request
// still carrying refreshToken gets the tokens PiPA issued for it.
// For wiring only: applications use package pipaauth.
func (f *Flow) KeepUnsaved(refreshToken string) {
	key := sha256.Sum256([]byte(refreshToken))
	f.refresh.mu.Lock()
	defer f.refresh.mu.Unlock()
	if c, ok := f.refresh.calls[key]; ok && c.err == nil {
		c.keep = unsavedMemo
	}
}

func (f *Flow) refreshNow(ctx context.Context, refreshToken, subject string) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.cfg.Client)
	ctx = oidc.ClientContext(ctx, f.cfg.Client)
	tok, err := f.cfg.OAuth2.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		e := exchangeError(err)
		if e.Status == http.StatusBadRequest || e.Reason == reasonUnreadable {
			return nil, sessionOver(e)
		}
		return nil, e
	}
	if err := readable(tok); err != nil {
		return nil, sessionOver(unreadable(err))
	}
	return f.checkRefreshed(ctx, tok, subject)
}

func sessionOver(cause error) error {
	return errs.New(http.StatusUnauthorized, ErrRefreshRefused, "Your PiPA session has ended. Please log in again.", cause)
}
