// Package fleet holds pipaauth's multi-instance and Redis tests; it has no code of its own.
//
// The tests start an in-process PiPA (package pipatest), two application
// instances sharing one configuration, and a round-robin reverse proxy in
// front of them that is the application's public URL, all on loopback, with
// sessions in Redis through github.com/boj/redistore (a plain gorilla
// store) or through redisstore (this repository's RevocableStore on
// rueidis, each instance with its own client: redisstore_test.go).
//
// Redis is found as follows: PIPAAUTH_REDIS_ADDR (host:port) names a running
// server to share; otherwise, when redis-server is on PATH, the test binary
// starts a private one on a free loopback port and stops it at the end;
// otherwise the Redis tests skip, unless PIPAAUTH_REQUIRE_REDIS=1, when they
// fail. Tests that stop, kill or freeze Redis always start a redis-server of
// their own, so they need the binary even when PIPAAUTH_REDIS_ADDR is set.
package fleet
