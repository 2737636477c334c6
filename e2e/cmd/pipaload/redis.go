package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/boj/redistore"
	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
	"github.com/pipaauth/pipaauth/redisstore"
)

// startRedis starts a private redis-server on a free loopback port, without
// persistence, for -store redis, and waits until it answers PING.
func startRedis() (*redisproc.Server, error) {
	s, err := redisproc.Start(redisproc.Options{})
	if errors.Is(err, redisproc.ErrNotFound) {
		return nil, fmt.Errorf("%w for -store redis or redisstore", err)
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

// newRedisstore is redisstore as docs/redis.md sets it up: a rueidis client
// with client-side caching (its default) and a write timeout, and the
// store's defaults (1 s cache bound). close closes the client.
func newRedisstore(addr string) (_ *redisstore.Store, close func(), _ error) {
	return newRedisstoreOn([]string{addr})
}

// newRedisstoreOn is newRedisstore on the node(s) addrs: a Cluster's nodes
// make rueidis a cluster client.
func newRedisstoreOn(addrs []string) (_ *redisstore.Store, close func(), _ error) {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, ConnWriteTimeout: time.Second, RetryDelay: redisstore.QuickRetry})
	if err != nil {
		return nil, nil, fmt.Errorf("rueidis: %w", err)
	}
	store, err := redisstore.New(client, redisstore.Options{KeyPrefix: "pipaload:"})
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return store, client.Close, nil
}

// redisCommands returns how many commands the Redis at addr has run, from
// INFO commandstats, leaving out INFO itself.
func redisCommands(addr string) (int64, error) {
	c, err := redisproc.Dial(addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	info, err := redis.String(c.Do("INFO", "commandstats"))
	if err != nil {
		return 0, fmt.Errorf("INFO commandstats: %w", err)
	}
	return sumCalls(info)
}

// sumCalls adds up the calls of every command of an INFO commandstats
// answer but INFO's own.
func sumCalls(info string) (int64, error) {
	var n int64
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok || name == "info" {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO commandstats line %q: %w", strings.TrimSpace(line), err)
		}
		n += c
	}
	return n, nil
}

// redisAddrs returns the Redis servers of the app's store: every node of
// its Cluster, its one server, or nil for cookie sessions.
func (a *app) redisAddrs() []string {
	switch {
	case a.cluster != nil:
		return a.cluster.Addrs()
	case a.redis != nil:
		return []string{a.redis.Addr}
	}
	return nil
}

// redisCommandsAll is redisCommands summed over addrs.
func redisCommandsAll(addrs []string) (int64, error) {
	var total int64
	for _, addr := range addrs {
		n, err := redisCommands(addr)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
