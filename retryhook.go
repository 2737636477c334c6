package pipaauth

import "context"

// retryKey is the context key of LazyDiscovery's backoff, which only this
// package's tests set (export_test.go): Config stays free of hidden fields.
type retryKey struct{}

// retryFrom returns the backoff ctx carries; the zero policy (the
// defaults) when none.
func retryFrom(ctx context.Context) retryPolicy {
	p, _ := ctx.Value(retryKey{}).(retryPolicy)
	return p
}
