package main

import (
	"errors"
	"fmt"

	"github.com/boj/redistore"

	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
)

// startRedis starts a private redis-server on a free loopback port, without
// persistence, for -store redis, and waits until it answers PING.
func startRedis() (*redisproc.Server, error) {
	s, err := redisproc.Start(redisproc.Options{})
	if errors.Is(err, redisproc.ErrNotFound) {
		return nil, fmt.Errorf("%w for -store redis", err)
	}
	return s, err
}

// newRedisStore is the store docs/redis.md recommends: a redigo pool whose
// connections have dial, read and write timeouts.
func newRedisStore(addr string, keys [][]byte) (*redistore.RediStore, error) {
	pool := redisproc.NewPool(addr, 64)
	store, err := redistore.NewRediStoreWithPool(pool, keys...)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("redistore: %w", err)
	}
	store.SetKeyPrefix("pipaload:session_")
	return store, nil
}
