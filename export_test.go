package pipaauth

import (
	"context"
	"time"
)

// WithDiscoveryRetry returns ctx, for New, with LazyDiscovery's backoff
// shortened: the first retry after first, then doubling up to most.
func WithDiscoveryRetry(ctx context.Context, first, most time.Duration) context.Context {
	return context.WithValue(ctx, retryKey{}, retryPolicy{first, most})
}

// BackgroundDone returns a channel closed when a's background discovery
// retries have stopped; nil without LazyDiscovery.
func BackgroundDone(a *Auth) <-chan struct{} {
	if a.lazy == nil {
		return nil
	}
	return a.lazy.done
}

// SetKeyInterval sets how often, at most, a's current key set may fetch
// PiPA's JWKS again (UnknownKeyInterval), so that tests of key rotations and
// outages need not wait ten seconds. Call it after discovery.
func SetKeyInterval(a *Auth, d time.Duration) {
	a.prov.Load().keys.SetInterval(d)
}
