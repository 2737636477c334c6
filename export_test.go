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
