// Package redisstore keeps pipaauth sessions in Redis through rueidis, with
// server-assisted client-side caching (RESP3 CLIENT TRACKING).
//
// A *Store is a gorilla sessions.Store, so it goes in
// pipaauth.Config.SessionStore, and it implements pipaauth.RevocableStore
// (the interface session.RevocableStore, whose documentation is the
// contract), which pipaauth detects and uses instead:
//
//   - A guarded request whose session this instance read within
//     Options.CacheTTL is answered from rueidis's local cache: no Redis round
//     trip and, as pipaauth keeps the decoded session per version, no
//     decoding. Redis tells every instance the moment a session key changes
//     or is deleted, and rueidis drops its entry, so a logout or revocation
//     on one instance is refused by the others within a network round trip.
//     An instance reads a session it wrote or deleted from Redis for 100 ms
//     after, so it always sees its own writes.
//   - Write-backs (token refresh, idle-timeout slide) are compare-and-set on
//     a version field in a Lua script, so they never undo a logout or a
//     revocation.
//   - Each session is indexed by the user's sub and the provider's sid, so
//     that RevokeSubject and RevokeSID (OpenID Connect Back-Channel Logout)
//     end them on every instance, in batches of 500 sessions per script
//     so that a user with 100,000 sessions never blocks Redis for long.
//   - A user has at most Options.MaxSessionsPerUser live sessions (default
//     100): a login beyond it ends that user's oldest ones.
//
// # Options
//
// Only KeyPrefix and CacheTTL matter to pipaauth (and apply to the gorilla
// methods too). KeyPairs, Session and Timeout serve plain gorilla use of
// the store (Get, New, Save) only: pipaauth seals its own cookie with
// Config.SessionKeys, sets its own cookie attributes, and bounds every call
// with Config.SessionStoreTimeout, so it never reads them. A Store for
// pipaauth alone needs none of the three.
//
// # Keys
//
// With the default KeyPrefix "pipaauth:", for a user whose tag (a short
// hash of the sub, see NewSessionID) is 3fa2c1:
//
//	pipaauth:{3fa2c1}:s:<id>     hash {v: version, d: session bytes, u: sub, s: sid, l: login ms, a: last seen ms, ua: User-Agent}, TTL = the session's expiry
//	pipaauth:{3fa2c1}:sub:<sub>  sorted set of session ids (score: expiry, ms), TTL = its latest member's expiry
//	pipaauth:{<sid tag>}:sid:<sid> the same, by the provider's sid, in the slot of a tag hashed from the sid
//	pipaauth:seen:<key>          Remember's markers (back-channel logout jti), TTL as asked
//
// A user's keys share a Redis Cluster slot, so the scripts that write them
// together stay single-slot, while users spread over every slot and
// master. A sid index is written before its session and cleaned after the
// session ends (ids are never reused, so a stale member never hides a live
// session). Any KeyPrefix works, with or without braces (one holding a
// "{...}" gets the user's tag before it). Index members whose session
// expired are removed whenever the index is written, and the index key
// expires with its last session, so indexes never outlive their sessions.
// Sessions written by redisstore before the per-user tags keep working
// where they are (see Options.NoLegacyKeys).
//
// # Failures
//
// Every call honours its context's deadline (pipaauth gives each one
// SessionStoreTimeout), so a down or frozen Redis costs an error, which
// pipaauth answers with 503, never a hang. When the connection is lost,
// rueidis empties its client-side cache at once (its pipe closes the cache
// as it exits) and reconnects on the next command. A connection that dies
// silently (a frozen server, a cut network) cannot announce itself, so no
// entry is served more than CacheTTL (default 1 s) after it was read from
// Redis: past it, the next request asks Redis again, and gets the current
// session or an error. Set rueidis.ClientOption.ConnWriteTimeout (for
// example to 1 s) so that rueidis also notices such a connection and
// replaces it.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth/session"
)

// Defaults of Options.
const (
	DefaultKeyPrefix = "pipaauth:"
	// DefaultCacheTTL bounds how long a session read from Redis may be
	// served from the client-side cache. Invalidation normally drops an
	// entry within a round trip of a change; the TTL is the bound when the
	// connection dies without rueidis noticing.
	DefaultCacheTTL = time.Second
	// DefaultTimeout bounds the calls of the gorilla methods, which take
	// no context.
	DefaultTimeout = 3 * time.Second
	// DefaultMaxAge is the lifetime in seconds of sessions saved through
	// the gorilla methods with no Options.Session.MaxAge: 30 days, as
	// gorilla's own stores.
	DefaultMaxAge = 86400 * 30
	// DefaultMaxSessionsPerUser is the default of Options.MaxSessionsPerUser.
	DefaultMaxSessionsPerUser = 100
)

// Options configure a Store. The zero value of every field is its default.
type Options struct {
	// KeyPrefix starts every key the store writes, for pipaauth and the
	// gorilla methods alike. Default "pipaauth:".
	// Give each application sharing a Redis its own; on a Redis Cluster,
	// make it a hash tag such as "{pipaauth}:".
	KeyPrefix string
	// NoLegacyKeys stops RevokeSubject, RevokeSID and ListSessions from
	// also looking for sessions in the key layout of redisstore before
	// per-user hash tags (keys directly under KeyPrefix, without a user's
	// tag): set it once SessionLifetime has passed since the upgrade, to
	// save the extra script run per call. Default false: they look (it
	// costs no round trip more). On a Cluster with a KeyPrefix without
	// braces they never look: that layout could not exist there.
	NoLegacyKeys bool
	// CacheTTL is the longest a session read from Redis is served from
	// the client-side cache (for pipaauth and the gorilla methods alike), and so the longest a change can go unseen
	// when the connection dies silently. Default 1 s (DefaultCacheTTL):
	// each instance then reads each active session from Redis at most
	// about once a second. Negative: no client-side cache, every load is a
	// round trip.
	CacheTTL time.Duration
	// MaxSessionsPerUser caps the live sessions of one user (sub): a login
	// beyond it ends that user's sessions that expire first (the oldest
	// logins), so that one account cannot fill Redis. Default 100
	// (DefaultMaxSessionsPerUser); negative: no cap.
	MaxSessionsPerUser int

	// The fields below serve the gorilla sessions.Store methods (Get, New,
	// Save) only; pipaauth uses the RevocableStore methods and never reads
	// them: it seals its cookie with Config.SessionKeys, sets the cookie's
	// attributes itself and bounds each call with Config.SessionStoreTimeout.

	// KeyPairs seal the session id in the gorilla cookie, as for
	// gorilla's sessions.NewCookieStore: hash key, block key, ... Required
	// to use the gorilla methods; they fail without.
	KeyPairs [][]byte
	// Session holds the gorilla cookie's attributes. Default: Path "/",
	// MaxAge DefaultMaxAge, HttpOnly, Secure, SameSite Lax.
	Session *sessions.Options
	// Timeout bounds each Redis call of the gorilla methods. Default 3 s.
	Timeout time.Duration
}

// Store keeps sessions in Redis. It is safe for concurrent use; create one
// per rueidis.Client and share it.
type Store struct {
	client  rueidis.Client
	prefix  string
	braced  bool          // the prefix decides a key's slot: user tags go before it
	spread  bool          // a Cluster without a hash tag in the prefix: no legacy keys, ids must name their user's tag
	legacy  bool          // look for sessions of the layout from before the per-user tags
	ttl     time.Duration // client-side cache TTL, 0 for none
	written *recentWrites // ids this Store wrote lately: read from Redis, not the cache
	codecs  []securecookie.Codec
	options sessions.Options
	timeout time.Duration

	maxPerUser int // Options.MaxSessionsPerUser; 0 for no cap
}

// New returns a session store on Redis through rueidis with server-assisted
// client-side caching. *Store implements gorilla's sessions.Store, so it is
// assigned to pipaauth.Config.SessionStore.
//
// The client must speak RESP3 with client tracking (Redis 6 or later,
// rueidis's default) for the cache; with rueidis.ClientOption.DisableCache
// every load is a round trip, and still correct. New makes no Redis call;
// Store.CheckServer checks the server's settings at start-up.
//
// Any KeyPrefix works on any topology: on a Redis Cluster, each user's keys
// share a slot and users spread over the slots (see the package doc).
//
// New fails, with an error that says what to change, when client is nil,
// when Timeout is negative, or when KeyPairs is
// not complete hash key, block key pairs that securecookie accepts (unlike
// gorilla's NewCookieStore, a lone hash key without a block key is
// refused: the gorilla cookie holds the session id, which is encrypted).
// These are configuration mistakes, with no errors.Is target.
func New(client rueidis.Client, opt Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: the rueidis client is nil: create one with rueidis.NewClient")
	}
	s := &Store{client: client, prefix: opt.KeyPrefix, timeout: opt.Timeout, written: newRecentWrites()}
	if s.prefix == "" {
		s.prefix = DefaultKeyPrefix
	}
	s.braced = bracedPrefix(s.prefix)
	// Before the per-user tags, New refused a Cluster client unless the
	// prefix had a hash tag: on a Cluster, a prefix without one has no
	// sessions of the old layout (and that layout's keys would not share
	// a slot).
	s.spread = client.Mode() == rueidis.ClientModeCluster && !hasHashTag(s.prefix)
	s.legacy = !s.spread && !opt.NoLegacyKeys
	switch {
	case opt.CacheTTL == 0:
		s.ttl = DefaultCacheTTL
	case opt.CacheTTL > 0:
		s.ttl = opt.CacheTTL
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	switch {
	case opt.MaxSessionsPerUser == 0:
		s.maxPerUser = DefaultMaxSessionsPerUser
	case opt.MaxSessionsPerUser > 0:
		s.maxPerUser = opt.MaxSessionsPerUser
	}
	if s.timeout < 0 {
		return nil, errors.New("redisstore: Options.Timeout is negative: leave it 0 for 3s")
	}
	if len(opt.KeyPairs)%2 != 0 {
		return nil, fmt.Errorf("redisstore: Options.KeyPairs has an odd number of keys (%d): give hash key, block key pairs", len(opt.KeyPairs))
	}
	if len(opt.KeyPairs) > 0 {
		s.codecs = securecookie.CodecsFromPairs(opt.KeyPairs...)
		for _, c := range s.codecs {
			if sc, ok := c.(*securecookie.SecureCookie); ok {
				if _, err := sc.Encode("check", "check"); err != nil {
					return nil, fmt.Errorf("redisstore: Options.KeyPairs: %w", err)
				}
			}
		}
	}
	s.options = sessions.Options{Path: "/", MaxAge: DefaultMaxAge, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
	if opt.Session != nil {
		s.options = *opt.Session
	}
	return s, nil
}

func (s *Store) seenKey(key string) string { return s.prefix + "seen:" + key }

// LoadSession returns the session bytes under id and their version; a
// missing id is version 0. A session read within CacheTTL comes from the
// client-side cache without a round trip. See session.RevocableStore.
func (s *Store) LoadSession(ctx context.Context, id string) ([]byte, uint64, error) {
	k, _ := s.keysOf(id)
	key := k.session(id)
	var res rueidis.RedisResult
	if s.ttl > 0 && !s.written.recent(id) {
		res = s.client.DoCache(ctx, s.client.B().Hmget().Key(key).Field("v", "d").Cache(), s.ttl)
	} else {
		res = s.client.Do(ctx, s.client.B().Hmget().Key(key).Field("v", "d").Build())
	}
	vals, err := res.ToArray()
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: loading a session: %w", err)
	}
	if len(vals) != 2 || vals[0].IsNil() {
		return nil, 0, nil
	}
	version, err := vals[0].AsUint64()
	if err != nil || version == 0 {
		return nil, 0, fmt.Errorf("redisstore: session %s has a malformed version field", key)
	}
	data, err := vals[1].AsBytes()
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: session %s has no data field", key)
	}
	return data, version, nil
}

// indexLua is shared by the scripts: index(key, id, expires, now) adds id
// to the index key with its expiry as score, drops the members already
// expired, and makes the key expire with its latest member;
// unindex(base, id, sub, sid) removes id from the sub index and, when sid
// is not nil, the sid index under base.
const indexLua = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function index(key, id, expires, now)
  redis.call('ZADD', key, expires, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, top[2]) end
end
local function unindex(base, id, sub, sid)
  if sub and sub ~= '' then redis.call('ZREM', base .. 'sub:' .. sub, id) end
  if sid and sid ~= '' then redis.call('ZREM', base .. 'sid:' .. sid, id) end
end
`

// A sid index lives in the user's slot only in the layout from before the
// per-user tags (ARGV "sidhere" = "1"); in the current layout it lives in
// the sid's own slot (a user's sessions and a provider session's may be
// in different slots), written and cleaned by separate commands.

// createScript: KEYS session, sub index, sid index; ARGV data, sub, sid,
// expires (unix ms), id, login time (unix ms, "" when not listed),
// User-Agent, sidhere. Returns 1 when created, 0 when the id exists.
var createScript = rueidis.NewLuaScript(indexLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = now_ms()
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1], 'u', ARGV[2], 's', ARGV[3])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'l', ARGV[6], 'a', ARGV[6], 'ua', ARGV[7]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if ARGV[2] ~= '' then index(KEYS[2], ARGV[5], ARGV[4], now) end
if ARGV[3] ~= '' and ARGV[8] == '1' then index(KEYS[3], ARGV[5], ARGV[4], now) end
return 1
`)

// replaceScript: KEYS as createScript; ARGV data, sub, sid, expires, id,
// version, the keys' base, sidhere. Returns 1 when replaced, 0 when the id
// is gone or its version is not ARGV[6]. The last-seen field becomes the
// server's time.
var replaceScript = rueidis.NewLuaScript(indexLua + `
local cur = redis.call('HMGET', KEYS[1], 'v', 'u', 's')
if not cur[1] or cur[1] ~= ARGV[6] then return 0 end
if cur[2] ~= ARGV[2] then unindex(ARGV[7], ARGV[5], cur[2], nil) end
if cur[3] ~= ARGV[3] and ARGV[8] == '1' then unindex(ARGV[7], ARGV[5], nil, cur[3]) end
local now = now_ms()
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'u', ARGV[2], 's', ARGV[3], 'a', now)
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if ARGV[2] ~= '' then index(KEYS[2], ARGV[5], ARGV[4], now) end
if ARGV[3] ~= '' and ARGV[8] == '1' then index(KEYS[3], ARGV[5], ARGV[4], now) end
return 1
`)

// upsertScript (gorilla Save): KEYS session; ARGV data, ttl ms. Writes
// whatever is there, keeping its sub and sid.
var upsertScript = rueidis.NewLuaScript(`
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// deleteScript: KEYS session; ARGV id, base, sidhere. Returns {1, sid}
// when deleted, {0, ”} when there was nothing. Idempotent, so rueidis may
// retry it after a network error.
var deleteScript = rueidis.NewLuaScriptRetryable(indexLua + `
local cur = redis.call('HMGET', KEYS[1], 'u', 's')
if redis.call('DEL', KEYS[1]) == 0 then return {0, ''} end
local sid = nil
if ARGV[3] == '1' then sid = cur[2] end
unindex(ARGV[2], ARGV[1], cur[1], sid)
return {1, cur[2] or ''}
`)

// revokeScript: KEYS index; ARGV base, sidhere, batch. Deletes up to batch
// sessions the index lists, with their other index entries in this slot,
// removes them from the index (and the index once empty), and returns the
// members left, then id, sid of each session deleted. Each session goes in
// one atomic step, so a compare-and-set running concurrently either lands
// before (and is deleted) or after (and finds nothing to replace); batches
// keep a user with 100,000 sessions from blocking Redis for the whole
// revocation.
var revokeScript = rueidis.NewLuaScript(indexLua + `
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
local out = {''}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. 's:' .. id
  local cur = redis.call('HMGET', key, 'u', 's')
  if redis.call('DEL', key) == 1 then
    local sid = nil
    if ARGV[2] == '1' then sid = cur[2] end
    unindex(ARGV[1], id, cur[1], sid)
    out[#out + 1] = id
    out[#out + 1] = cur[2] or ''
  end
  redis.call('ZREM', KEYS[1], id)
end
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[1]) end
out[1] = tostring(left)
return out
`)

// capScript: KEYS sub index; ARGV base, cap, sidhere. Ends the sessions of
// the sub index beyond cap, those that expire first (the oldest logins),
// with their index entries in this slot. Returns id, sid of each session
// ended.
var capScript = rueidis.NewLuaScript(indexLua + `
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over <= 0 then return {} end
local ids = redis.call('ZRANGE', KEYS[1], 0, over - 1)
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. 's:' .. id
  local cur = redis.call('HMGET', key, 'u', 's')
  redis.call('DEL', key)
  local sid = nil
  if ARGV[3] == '1' then sid = cur[2] end
  unindex(ARGV[1], id, cur[1], sid)
  redis.call('ZREM', KEYS[1], id)
  out[#out + 1] = id
  out[#out + 1] = cur[2] or ''
end
return out
`)

// revokeBatch is how many sessions one revokeScript call deletes: a few
// milliseconds of Redis time.
const revokeBatch = 500

// revokeIDsScript: KEYS one of the sessions (for the slot); ARGV base,
// ids... Deletes those sessions of one user and their sub index entries,
// atomically; returns how many existed.
var revokeIDsScript = rueidis.NewLuaScript(indexLua + `
local n = 0
for i = 2, #ARGV do
  local key = ARGV[1] .. 's:' .. ARGV[i]
  local sub = redis.call('HGET', key, 'u')
  if redis.call('DEL', key) == 1 then
    n = n + 1
    unindex(ARGV[1], ARGV[i], sub, nil)
  end
end
return n
`)

// sidAddScript: KEYS sid index; ARGV id, expires. Indexes a session by its
// sid, in the sid's slot, before the session is written: a RevokeSID that
// runs once the session exists finds it.
var sidAddScript = rueidis.NewLuaScript(indexLua + `
index(KEYS[1], ARGV[1], ARGV[2], now_ms())
return 1
`)

// sidDropScript: KEYS sid index; ARGV ids... Removes ended sessions' ids
// (never reused, so removing one never hides a live session) and the key
// once empty. Idempotent.
var sidDropScript = rueidis.NewLuaScriptRetryable(indexLua + `
for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
`)

// listScript: KEYS sub index; ARGV base. Returns id, login ms, last-seen
// ms, User-Agent for each live session the index lists (read-only, one
// slot).
var listScript = rueidis.NewLuaScriptReadOnly(indexLua + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[1] .. 's:' .. id, 'v', 'l', 'a', 'ua')
  if f[1] then
    out[#out + 1] = id
    out[#out + 1] = f[2] or ''
    out[#out + 1] = f[3] or ''
    out[#out + 1] = f[4] or ''
  end
end
return out
`)

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// sidHere is the sidhere argument of the scripts: "1" for the layout from
// before the per-user tags, whose sid indexes live beside the sessions.
func sidHere(tag string) string {
	if tag == "" {
		return "1"
	}
	return ""
}

// CreateSession stores a new session under id, indexed by sub and sid when
// not empty; created is false when id exists. See session.RevocableStore.
// The id should come from NewSessionID: on a Redis Cluster, CreateSession
// refuses any other unless KeyPrefix has braces.
func (s *Store) CreateSession(ctx context.Context, id string, data []byte, sub, sid string, expires time.Time) (bool, error) {
	return s.create(ctx, id, data, sub, sid, expires, "", "")
}

// CreateListedSession is CreateSession that also keeps, beside the
// session's data, the login time and the User-Agent (cut to
// session.MaxUserAgentBytes) that ListSessions returns. pipaauth calls it
// instead of CreateSession. See pipaauth.SessionLister.
func (s *Store) CreateListedSession(ctx context.Context, id string, data []byte, sub, sid string, expires, loginAt time.Time, userAgent string) (bool, error) {
	if len(userAgent) > session.MaxUserAgentBytes {
		userAgent = userAgent[:session.MaxUserAgentBytes]
	}
	return s.create(ctx, id, data, sub, sid, expires, ms(loginAt), userAgent)
}

func (s *Store) create(ctx context.Context, id string, data []byte, sub, sid string, expires time.Time, loginAt, userAgent string) (bool, error) {
	k, tag := s.keysOf(id)
	if tag == "" && s.spread {
		return false, fmt.Errorf("redisstore: creating a session: the id %q does not come from Store.NewSessionID, and on a Redis Cluster only those find their user's slot", id)
	}
	if tag != "" && sid != "" {
		if err := sidAddScript.Exec(ctx, s.client, []string{s.sidIndexKey(sid)}, []string{id, ms(expires)}).Error(); err != nil {
			return false, fmt.Errorf("redisstore: creating a session: indexing its sid: %w", err)
		}
	}
	s.written.mark(id)
	n, err := createScript.Exec(ctx, s.client,
		[]string{k.session(id), k.sub(sub), k.sid(sid)},
		[]string{string(data), sub, sid, ms(expires), id, loginAt, userAgent, sidHere(tag)}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("redisstore: creating a session: %w", err)
	}
	if n == 1 && sub != "" && s.maxPerUser > 0 {
		// One user cannot fill Redis: the oldest sessions beyond the cap end.
		out, err := capScript.Exec(ctx, s.client, []string{k.sub(sub)}, []string{k.base, strconv.Itoa(s.maxPerUser), sidHere(tag)}).AsStrSlice()
		if err == nil {
			_, err = s.ended(ctx, out, sidHere(tag))
		}
		if err != nil {
			return true, fmt.Errorf("redisstore: ending the sessions beyond MaxSessionsPerUser: %w", err)
		}
	}
	return n == 1, nil
}

// ReplaceSession overwrites the session under id if its version is still
// version (compare-and-set in a Lua script), and sets its last-seen time
// to Redis's clock. See session.RevocableStore. (pipaauth never changes a
// session's sid in a write-back; when a caller does, the session stays in
// the old sid's index too, until it ends.)
func (s *Store) ReplaceSession(ctx context.Context, id string, version uint64, data []byte, sub, sid string, expires time.Time) (bool, error) {
	k, tag := s.keysOf(id)
	if tag != "" && sid != "" {
		if err := sidAddScript.Exec(ctx, s.client, []string{s.sidIndexKey(sid)}, []string{id, ms(expires)}).Error(); err != nil {
			return false, fmt.Errorf("redisstore: replacing a session: indexing its sid: %w", err)
		}
	}
	s.written.mark(id)
	n, err := replaceScript.Exec(ctx, s.client,
		[]string{k.session(id), k.sub(sub), k.sid(sid)},
		[]string{string(data), sub, sid, ms(expires), id, strconv.FormatUint(version, 10), k.base, sidHere(tag)}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("redisstore: replacing a session: %w", err)
	}
	return n == 1, nil
}

// DeleteSession deletes the session under id and its index entries.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	k, tag := s.keysOf(id)
	s.written.mark(id)
	res, err := deleteScript.Exec(ctx, s.client, []string{k.session(id)}, []string{id, k.base, sidHere(tag)}).ToArray()
	if err != nil {
		return fmt.Errorf("redisstore: deleting a session: %w", err)
	}
	if len(res) == 2 && tag != "" {
		if sid, _ := res[1].ToString(); sid != "" {
			if err := s.dropFromSID(ctx, sid, []string{id}); err != nil {
				return fmt.Errorf("redisstore: deleting a session: %w", err)
			}
		}
	}
	return nil
}

// dropFromSID removes ended sessions from sid's index.
func (s *Store) dropFromSID(ctx context.Context, sid string, ids []string) error {
	if err := sidDropScript.Exec(ctx, s.client, []string{s.sidIndexKey(sid)}, ids).Error(); err != nil {
		return fmt.Errorf("cleaning the sid index: %w", err)
	}
	return nil
}

// RevokeSID deletes every session indexed with the provider's sid and
// returns how many. It reads the sid's index (in the sid's slot), deletes
// the sessions it names in each of their users' slots, then removes those
// ids from the index; and it does the same in the layout from before the
// per-user tags. See session.RevocableStore.
func (s *Store) RevokeSID(ctx context.Context, sid string) (int, error) {
	ids, err := s.client.Do(ctx, s.client.B().Zrange().Key(s.sidIndexKey(sid)).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return 0, fmt.Errorf("redisstore: revoking sessions: reading the sid index: %w", err)
	}
	byTag := map[string][]string{}
	var tags []string
	for _, id := range ids {
		if _, tag := s.keysOf(id); tag != "" {
			if byTag[tag] == nil {
				tags = append(tags, tag)
			}
			byTag[tag] = append(byTag[tag], id)
		}
	}
	total := 0
	if len(tags) > 0 {
		execs := make([]rueidis.LuaExec, len(tags))
		for i, tag := range tags {
			k := s.userKeys(tag)
			execs[i] = rueidis.LuaExec{Keys: []string{k.session(byTag[tag][0])}, Args: append([]string{k.base}, byTag[tag]...)}
		}
		for _, id := range ids {
			s.written.mark(id)
		}
		for _, res := range revokeIDsScript.ExecMulti(ctx, s.client, execs...) {
			n, err := res.AsInt64()
			if err != nil {
				return total, fmt.Errorf("redisstore: revoking sessions: %w", err)
			}
			total += int(n)
		}
	}
	if len(ids) > 0 {
		if err := s.dropFromSID(ctx, sid, ids); err != nil {
			return total, fmt.Errorf("redisstore: revoking sessions: %w", err)
		}
	}
	if s.legacy {
		n, err := s.revoke(ctx, s.legacyKeys().sid(sid), s.prefix, "1")
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// RevokeSubject deletes every session of the user sub and returns how many.
func (s *Store) RevokeSubject(ctx context.Context, sub string) (int, error) {
	k := s.userKeys(userTag(sub))
	total, err := s.revoke(ctx, k.sub(sub), k.base, "")
	if err != nil {
		return total, err
	}
	if s.legacy {
		n, err := s.revoke(ctx, s.legacyKeys().sub(sub), s.prefix, "1")
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// revoke runs revokeScript on index, in batches of revokeBatch, until the
// index is empty. sidhere is "1" in the layout from before the per-user
// tags (sid indexes beside the sessions), "" in the per-user layout, whose
// sid indexes live in the sids' own slots.
func (s *Store) revoke(ctx context.Context, index, base, sidhere string) (int, error) {
	total := 0
	for {
		out, err := revokeScript.Exec(ctx, s.client, []string{index}, []string{base, sidhere, strconv.Itoa(revokeBatch)}).AsStrSlice()
		if err == nil && len(out)%2 != 1 {
			err = fmt.Errorf("unexpected reply of %d values", len(out))
		}
		if err != nil {
			return total, fmt.Errorf("redisstore: revoking sessions (%d ended so far): %w", total, err)
		}
		n, err := s.ended(ctx, out[1:], sidhere)
		total += n
		if err != nil {
			return total, err
		}
		if out[0] == "0" {
			return total, nil
		}
	}
}

// ended takes the sessions a script ended (id, sid pairs): they count as
// written (no cached read of them), and in the per-user layout (sidhere
// "") they leave their sid indexes. It returns how many there were.
func (s *Store) ended(ctx context.Context, pairs []string, sidhere string) (int, error) {
	bySID := map[string][]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		s.written.mark(pairs[i])
		if sid := pairs[i+1]; sid != "" && sidhere == "" {
			bySID[sid] = append(bySID[sid], pairs[i])
		}
	}
	for sid, ids := range bySID {
		if err := s.dropFromSID(ctx, sid, ids); err != nil {
			return len(pairs) / 2, fmt.Errorf("redisstore: revoking sessions: %w", err)
		}
	}
	return len(pairs) / 2, nil
}

// ListSessions returns the live sessions of the user sub, in no particular
// order, with one script run in the user's slot (and one in the layout
// from before the per-user tags), in one round trip. Its cost grows with
// the user's sessions, never with the store's. See pipaauth.SessionLister.
func (s *Store) ListSessions(ctx context.Context, sub string) ([]session.StoredSession, error) {
	spaces := []keyspace{s.userKeys(userTag(sub))}
	if s.legacy {
		spaces = append(spaces, s.legacyKeys())
	}
	execs := make([]rueidis.LuaExec, len(spaces))
	for i, k := range spaces {
		execs[i] = rueidis.LuaExec{Keys: []string{k.sub(sub)}, Args: []string{k.base}}
	}
	out := []session.StoredSession{}
	for _, res := range listScript.ExecMulti(ctx, s.client, execs...) {
		vals, err := res.AsStrSlice()
		if err != nil {
			return nil, fmt.Errorf("redisstore: listing sessions: %w", err)
		}
		for i := 0; i+3 < len(vals); i += 4 {
			out = append(out, session.StoredSession{
				ID:        vals[i],
				LoginAt:   msTime(vals[i+1]),
				LastSeen:  msTime(vals[i+2]),
				UserAgent: vals[i+3],
			})
		}
	}
	return out, nil
}

// msTime parses unix milliseconds; "" or garbage is the zero time.
func msTime(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// Remember sets KeyPrefix+"seen:"+key for ttl unless it exists (SET NX PX)
// and reports whether it did.
func (s *Store) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("redisstore: Remember needs a positive ttl")
	}
	err := s.client.Do(ctx, s.client.B().Set().Key(s.seenKey(key)).Value("1").Nx().Px(ttl).Build()).Error()
	switch {
	case rueidis.IsRedisNil(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redisstore: remembering a key: %w", err)
	}
	return true, nil
}

// Remembered implements session.RememberedChecker: whether a key
// Remember recorded is still there (EXISTS), without recording it.
func (s *Store) Remembered(ctx context.Context, key string) (bool, error) {
	n, err := s.client.Do(ctx, s.client.B().Exists().Key(s.seenKey(key)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("redisstore: looking a key up: %w", err)
	}
	return n > 0, nil
}

// Forget implements session.RevocableStore: it deletes a key Remember
// recorded; a missing key is not an error.
func (s *Store) Forget(ctx context.Context, key string) error {
	if err := s.client.Do(ctx, s.client.B().Del().Key(s.seenKey(key)).Build()).Error(); err != nil {
		return fmt.Errorf("redisstore: forgetting a key: %w", err)
	}
	return nil
}

// ownWriteWindow is how long after writing or deleting a session id a Store
// reads it from Redis rather than from the client-side cache: long enough
// for the invalidation of its own write to arrive (about a millisecond on
// a LAN), short enough to leave the cache on for sessions written now and
// then (a login, a token refresh, an idle-timeout slide).
const ownWriteWindow = 100 * time.Millisecond

// recentWrites remembers, for ownWriteWindow, the session ids this Store
// wrote or deleted, so that its own next loads of them go to Redis instead
// of the client-side cache: rueidis pipelines commands over several
// connections, and a write sent on another connection than the cached read
// is announced to the reading one asynchronously, a moment after the
// write's reply. Without this, a request right after this instance's own
// token refresh could read the previous tokens and spend the rotated-out
// refresh token.
//
// Loads, on every guarded request, must not contend: each shard's map is
// never changed once published, so a lookup is an atomic load and a map
// read. A write (rare: a login, a refresh, a slide, a logout) copies its
// shard's map, leaving out the entries older than the window.
type recentWrites struct {
	seed   maphash.Seed
	shards [writeShards]writeShard
}

const writeShards = 64

type writeShard struct {
	mu sync.Mutex                           // serializes writers
	m  atomic.Pointer[map[string]time.Time] // id -> when its write began; read-only once stored
}

func newRecentWrites() *recentWrites { return &recentWrites{seed: maphash.MakeSeed()} }

func (w *recentWrites) shard(id string) *writeShard {
	return &w.shards[maphash.String(w.seed, id)%writeShards]
}

// mark records that id is being written now. Called before the write, so
// that a load racing the write's reply goes to Redis too.
func (w *recentWrites) mark(id string) {
	sh := w.shard(id)
	now := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	next := map[string]time.Time{id: now}
	if old := sh.m.Load(); old != nil {
		for k, t := range *old {
			if now.Sub(t) <= ownWriteWindow && k != id {
				next[k] = t
			}
		}
	}
	sh.m.Store(&next)
}

// recent reports whether id was written within ownWriteWindow.
func (w *recentWrites) recent(id string) bool {
	m := w.shard(id).m.Load()
	if m == nil {
		return false
	}
	t, ok := (*m)[id]
	return ok && time.Since(t) <= ownWriteWindow
}

// Interface checks.
var (
	_ sessions.Store         = (*Store)(nil)
	_ session.RevocableStore = (*Store)(nil)
	_ session.SessionLister  = (*Store)(nil)
	_ session.IDMaker        = (*Store)(nil)
)

// QuickRetry is a rueidis.ClientOption.RetryDelay for the client of a
// Store: a read-only command that failed on the network is retried at
// most twice, a millisecond apart, and then fails. That is enough to get
// past a connection that died with a restarted server, while a refused
// connection (Redis down) fails within milliseconds: rueidis's default
// retries with backoff until the request's deadline, so every guarded
// request of an outage would wait pipaauth's SessionStoreTimeout (3 s)
// before its 503. Writes (the store's scripts) are never retried.
func QuickRetry(attempts int, _ rueidis.Completed, _ error) time.Duration {
	if attempts < 2 {
		return time.Millisecond
	}
	return -1
}

// CheckServer reports, as an error, a Redis setting under which the store
// cannot keep its guarantees; call it once at start-up and refuse to start
// on an error (or log it). It checks:
//
//   - maxmemory-policy is noeviction. Under an eviction policy Redis drops
//     keys under memory pressure, and every key of the store has a TTL, so
//     even volatile-* policies may evict the sid and sub indexes (rarely
//     read, so first to go under LRU: revocation then ends nothing) or the
//     markers of seen logout tokens (a replay is accepted again). Where
//     CONFIG is not allowed (some managed services), this check is skipped.
//   - the client's connections do not track with NOLOOP
//     (rueidis.ClientOption.ClientTrackingOptions): with it, an instance is
//     not told of its own writes and would serve a session it just ended
//     from its cache.
//
// It makes two Redis calls under ctx.
func (s *Store) CheckServer(ctx context.Context) error {
	policy, err := s.client.Do(ctx, s.client.B().ConfigGet().Parameter("maxmemory-policy").Build()).AsStrMap()
	switch {
	case err != nil && isUnavailable(err):
		return fmt.Errorf("redisstore: reading maxmemory-policy: %w", err)
	case err == nil && policy["maxmemory-policy"] != "" && policy["maxmemory-policy"] != "noeviction":
		return fmt.Errorf("redisstore: Redis's maxmemory-policy is %q: set it to noeviction (an evicted sid or sub index, or seen logout token, breaks revocation and replay protection)", policy["maxmemory-policy"])
	}
	info, err := s.client.Do(ctx, s.client.B().ClientTrackinginfo().Build()).ToMap()
	if err != nil {
		return fmt.Errorf("redisstore: reading CLIENT TRACKINGINFO: %w", err)
	}
	if flags, ok := info["flags"]; ok {
		list, _ := flags.AsStrSlice()
		for _, f := range list {
			if f == "noloop" {
				return errors.New("redisstore: the client tracks with NOLOOP: an instance would not be told of its own writes and could serve a session it just ended; drop NOLOOP from ClientTrackingOptions")
			}
		}
	}
	return nil
}

// isUnavailable reports whether err is a failure to reach Redis rather than
// an answer (such as a refused CONFIG command).
func isUnavailable(err error) bool {
	var re *rueidis.RedisError
	return !errors.As(err, &re)
}
