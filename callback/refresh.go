package callback

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"

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
}

// Refresh trades refreshToken for new tokens. Concurrent and recent calls
// with the same refresh token share one request to the provider. Its errors
// wrap ErrRefreshRefused when the provider refused the token, and
// errs.ErrExchange otherwise.
// For wiring only: applications use package pipaauth.
func (f *Flow) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	key := sha256.Sum256([]byte(refreshToken))
	now := f.cfg.Now()
	f.refresh.mu.Lock()
	if f.refresh.calls == nil {
		f.refresh.calls = make(map[[sha256.Size]byte]*refreshCall)
	}
	for k, c := range f.refresh.calls {
		if !c.end.IsZero() && now.Sub(c.end) > refreshMemo {
			delete(f.refresh.calls, k)
		}
	}
	c, ok := f.refresh.calls[key]
	if !ok {
		c = &refreshCall{done: make(chan struct{})}
		f.refresh.calls[key] = c
	}
	f.refresh.mu.Unlock()
	if !ok {
		// The request runs to its end even if this caller goes away: others
		// may be waiting for it, and a spent refresh token is gone.
		c.tok, c.err = f.refreshNow(context.WithoutCancel(ctx), refreshToken)
		f.refresh.mu.Lock()
		c.end = f.cfg.Now()
		if c.err != nil && !errors.Is(c.err, ErrRefreshRefused) {
			// A transient failure (5xx, timeout) is not remembered: the
			// next caller tries again. (A timeout may still have spent the
			// token at the provider; a retry then ends as a refusal.)
			delete(f.refresh.calls, key)
		}
		f.refresh.mu.Unlock()
		close(c.done)
	}
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return nil, errs.New(http.StatusGatewayTimeout, errs.ErrExchange, "PiPA did not answer in time.", ctx.Err())
	}
}

func (f *Flow) refreshNow(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.cfg.Client)
	tok, err := f.cfg.OAuth2.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err == nil {
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
		return nil, errs.New(http.StatusUnauthorized, ErrRefreshRefused, "Your PiPA session has ended. Please log in again.", exchangeError(err))
	}
	return nil, exchangeError(err)
}
