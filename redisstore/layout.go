package redisstore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Key layout. A user's sessions and sub index carry the user's hash tag, a
// short hash of the sub, so that on a Redis Cluster they share a slot (the
// scripts that write them together stay single-slot) while users spread
// over every slot. A provider session's sid index carries a tag hashed from
// the sid. With KeyPrefix "pipaauth:" and a user whose tag is 3fa2c1:
//
//	pipaauth:{3fa2c1}:s:3fa2c1.<26 random base32>  a session (hash)
//	pipaauth:{3fa2c1}:sub:<sub>                    the user's sessions (sorted set)
//	pipaauth:{9b04e7}:sid:<sid>                    the sessions of a provider sid (sorted set; the sid's tag)
//	pipaauth:seen:<key>                            Remember's markers
//
// A session id names its user's tag (NewSessionID), so a load by id finds
// the slot without the sub. A KeyPrefix that holds a '{' followed by a '}'
// would decide the slot itself, so the tag then goes first:
// "{3fa2c1}{myapp}:s:...".
//
// Sessions written before the per-user tags (ids without a '.', keys
// directly under the prefix: pipaauth:s:<id>, pipaauth:sub:<sub>,
// pipaauth:sid:<sid>) are read, written back and deleted where they are,
// and RevokeSubject, RevokeSID and ListSessions look there too, until
// Options.NoLegacyKeys says none are left.

// tagLen is the length of a user tag: 6 hex digits, 24 bits, ample for
// 16,384 slots.
const tagLen = 6

// keyspace names the keys under one base: the prefix with a user's tag, or
// the bare prefix of the layout from before the tags.
type keyspace struct{ base string }

func (k keyspace) session(id string) string { return k.base + "s:" + id }
func (k keyspace) sub(sub string) string    { return k.base + "sub:" + sub }
func (k keyspace) sid(sid string) string    { return k.base + "sid:" + sid }

// userTag is the hash tag of a user's keys.
func userTag(sub string) string {
	h := sha256.Sum256([]byte("sub\x00" + sub))
	return hex.EncodeToString(h[:tagLen/2])
}

// sidTag is the hash tag of a sid's index: spread like users.
func sidTag(sid string) string {
	h := sha256.Sum256([]byte("sid\x00" + sid))
	return hex.EncodeToString(h[:tagLen/2])
}

func validTag(tag string) bool {
	if len(tag) != tagLen {
		return false
	}
	for i := range len(tag) {
		if c := tag[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// bracedPrefix reports whether prefix holds a '{' followed by a '}': such a
// prefix decides the slot of every key that starts with it (an empty "{}"
// makes Redis hash the whole key), so the user's tag must go before it.
func bracedPrefix(prefix string) bool {
	open := strings.IndexByte(prefix, '{')
	return open >= 0 && strings.IndexByte(prefix[open+1:], '}') >= 0
}

// userKeys is the keyspace of the user whose tag is tag.
func (s *Store) userKeys(tag string) keyspace {
	if s.braced {
		return keyspace{"{" + tag + "}" + s.prefix}
	}
	return keyspace{s.prefix + "{" + tag + "}:"}
}

// legacyKeys is the layout from before the per-user tags.
func (s *Store) legacyKeys() keyspace { return keyspace{s.prefix} }

// keysOf returns the keyspace of the session id and its user's tag: "" for
// an id without one (written before the tags, or by the gorilla methods),
// which lives in the legacy layout.
func (s *Store) keysOf(id string) (keyspace, string) {
	tag, _, ok := strings.Cut(id, ".")
	if ok && validTag(tag) {
		return s.userKeys(tag), tag
	}
	return s.legacyKeys(), ""
}

// sidIndexKey is the index of the sessions of a provider session, in the
// slot of the sid's own tag.
func (s *Store) sidIndexKey(sid string) string { return s.userKeys(sidTag(sid)).sid(sid) }

// NewSessionID returns the id of a new session of the user sub: the user's
// tag, a dot, and 128 random bits in base32 (33 bytes in all), so that a
// load by id finds the user's slot. pipaauth calls it for every new session
// (it detects session.IDMaker). It never fails.
func (s *Store) NewSessionID(sub string) (string, error) {
	return userTag(sub) + "." + rand.Text(), nil
}

// hasHashTag reports whether every key starting with prefix hashes to the
// same Redis Cluster slot: a '{' followed, later, by a '}' with at least one
// byte between them (the only prefixes redisstore accepted on a Cluster
// before the per-user tags).
func hasHashTag(prefix string) bool {
	open := strings.IndexByte(prefix, '{')
	return open >= 0 && strings.IndexByte(prefix[open+1:], '}') > 0
}
