package pipaauth

import "time"

// SetDiscoveryRetry shortens LazyDiscovery's backoff: the first retry after
// first, then doubling up to most.
func SetDiscoveryRetry(c *Config, first, most time.Duration) {
	c.discoveryRetry = retryPolicy{first, most}
}

// BackgroundDone returns a channel closed when a's background discovery
// retries have stopped; nil without LazyDiscovery.
func BackgroundDone(a *Auth) <-chan struct{} {
	if a.lazy == nil {
		return nil
	}
	return a.lazy.done
}
