package session

import (
	"context"
	"time"
)

// RevocableStore is a server-side session store that the Manager drives
// directly, without gorilla's sessions.Store: every call takes a context,
// write-backs are compare-and-set, and sessions can be ended by the OpenID
// Provider's session id (sid) or by user (sub), as OpenID Connect
// Back-Channel Logout 1.0 needs.
//
// A Manager whose Options.Store also implements RevocableStore uses it
// through this interface (the way io.Copy upgrades to io.WriterTo); any other
// gorilla store keeps working through sessions.Store. The method set uses
// only standard-library types, so a store (PostgreSQL, Valkey Cluster, ...)
// implements it without importing pipaauth.
//
// pipaauth.RevocableStore is this interface (a type alias); this comment
// and the method comments below are its one documentation.
//
// What the store keeps per session id is a record: the serialized session
// (opaque bytes, at most a few kilobytes, never interpreted by the store),
// the user's sub, the provider's sid ("" when the ID token had none), an
// expiry after which the store may forget the record, and a version, an
// unsigned integer the store assigns: 1 or more, different after every
// write of the id. Ids are chosen by the Manager: at least 128 random bits,
// in base32 (crypto/rand.Text: 26 characters), never reused.
//
// A load must reflect this process's own completed writes and deletes at
// once, even where other instances' writes are seen within a bound: a
// request right after its own token refresh must not read the rotated-out
// refresh token back (redisstore reads ids it wrote in the last 100 ms from
// Redis, not from its client-side cache).
//
// The Manager never calls the gorilla sessions.Store methods (Get, New,
// Save) of a RevocableStore; a store still has them because
// Config.SessionStore is a sessions.Store, and may implement them for
// plain gorilla use (redisstore does) or return an error.
//
// Every method is safe for concurrent use by many goroutines and processes,
// and honours ctx: when ctx is done or its deadline passes, the method
// returns promptly with an error (wrapping ctx.Err() where it can), never
// blocking past the deadline. A non-nil error means the store could not
// answer (down, timed out, refused); the Manager maps it to 503, never to
// "no session".
type RevocableStore interface {
	// LoadSession returns the serialized session stored under id and its
	// version. A missing or expired id is version 0 with nil data and a nil
	// error. The returned slice belongs to the caller. A store with a local
	// cache may serve a cached record, as long as a write, delete or
	// revocation on any instance is seen within a bound the store documents.
	LoadSession(ctx context.Context, id string) (data []byte, version uint64, err error)

	// CreateSession stores a new record under id, which the Manager has
	// just generated, and indexes it by sub and sid (when not ""). It
	// returns created=false and changes nothing when id already exists.
	CreateSession(ctx context.Context, id string, data []byte, sub, sid string, expires time.Time) (created bool, err error)

	// ReplaceSession overwrites the record under id only if it still exists
	// and its version is still version (compare-and-set), so a write-back
	// that read the session before a logout or revocation can never bring
	// it back. It returns replaced=false, and changes nothing, when the id
	// is gone or was written since. The indexes follow the new sub and sid.
	ReplaceSession(ctx context.Context, id string, version uint64, data []byte, sub, sid string, expires time.Time) (replaced bool, err error)

	// DeleteSession removes the record under id and its index entries. A
	// missing id is not an error.
	DeleteSession(ctx context.Context, id string) error

	// RevokeSID deletes every session recorded with this sid and returns
	// how many it deleted. A concurrent ReplaceSession of one of them must
	// fail, never resurrect it. sid is never "".
	RevokeSID(ctx context.Context, sid string) (int, error)

	// RevokeSubject deletes every session of this user (sub) and returns how
	// many it deleted, with the same guarantee as RevokeSID. sub is never "".
	RevokeSubject(ctx context.Context, sub string) (int, error)

	// Remember records key for ttl if it is not recorded yet and reports
	// whether this call recorded it (first=true) or it was already there:
	// an atomic set-if-absent with expiry (Redis SET NX PX), shared by every
	// instance. Back-channel logout uses it to refuse a replayed logout
	// token's jti for the token's lifetime, and to mark a revoked sid,
	// which every login with a sid then checks with a ttl of one
	// millisecond: honour ttl to the millisecond. ttl is positive.
	Remember(ctx context.Context, key string, ttl time.Duration) (first bool, err error)

	// Forget removes a key Remember recorded; a missing key is not an
	// error. Back-channel logout calls it when ending the sessions failed,
	// so that the provider's retry with the same token is not refused as
	// a replay.
	Forget(ctx context.Context, key string) error
}
