package session

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// recordBackend keeps the session in a RevocableStore. The cookie holds
// only the session id (crypto/rand.Text: 128 random bits), sealed with
// securecookie under the Manager's KeyPairs, so an id is never even looked
// up unless this application issued it. Every store call carries the
// request's context with StoreTimeout as its deadline; write-backs are
// compare-and-set on the version the request loaded.
type recordBackend struct {
	opt      Options
	store    RevocableStore
	writer   *securecookie.SecureCookie   // first pair
	codecs   []*securecookie.SecureCookie // every pair, in order, for reading
	cache    *cache[*recordEntry]         // cookie value -> id, and the last decoded version
	seed     maphash.Seed                 // for recordEntry.sum
	canceled context.Context
}

// recordEntry is what a verified cookie value stands for: its session id
// and, once loaded, the session decoded from raw, read at version. Entries
// are never changed, only replaced: readers share them without locks.
type recordEntry struct {
	id      string
	version uint64
	sum     uint64 // maphash of the record's bytes, not the bytes: the entry stays small
	data    *Data
}

func newRecordBackend(opt Options, store RevocableStore) *recordBackend {
	b := &recordBackend{opt: opt, store: store, seed: maphash.MakeSeed()}
	// securecookie's own timestamp check is loose (the lifetime plus a
	// day); the store's expiry and the Manager's checks are the real ones.
	maxAge := int((opt.Lifetime + 24*time.Hour) / time.Second)
	codec := func(hashKey, blockKey []byte) *securecookie.SecureCookie {
		c := securecookie.New(hashKey, blockKey)
		c.SetSerializer(securecookie.NopEncoder{})
		c.MaxAge(maxAge)
		c.MaxLength(MaxCookieBytes)
		return c
	}
	for i := 0; i < len(opt.KeyPairs); i += 2 {
		b.codecs = append(b.codecs, codec(opt.KeyPairs[i], opt.KeyPairs[i+1]))
	}
	b.writer = b.codecs[0]
	b.cache = newCache[*recordEntry](cacheSize(opt.CacheSize))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.canceled = ctx
	return b
}

// ctx returns r's context bounded by StoreTimeout, with no timer until a
// store call waits on it; call release when the store call has returned.
func (b *recordBackend) ctx(r *http.Request) *lazyDeadline {
	parent := context.Background()
	if r != nil {
		parent = r.Context()
	}
	return &lazyDeadline{parent: parent, deadline: time.Now().Add(b.opt.StoreTimeout), canceled: b.canceled}
}

// entry returns what r's cookie stands for: (nil, nil) without a cookie,
// ErrInvalid when the cookie does not open with any key pair.
func (b *recordBackend) entry(r *http.Request) (*recordEntry, string, error) {
	if r == nil {
		return nil, "", nil
	}
	value, ok := cookieValue(r.Header, b.opt.Name)
	if !ok {
		return nil, "", nil
	}
	if e, ok := b.cache.get(value); ok {
		return e, value, nil
	}
	var raw []byte
	var err error
	for _, c := range b.codecs {
		if err = c.Decode(b.opt.Name, value, &raw); err == nil {
			break
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(raw) == 0 || len(raw) > 64 {
		return nil, "", fmt.Errorf("%w: malformed session id", ErrInvalid)
	}
	e := &recordEntry{id: string(raw)}
	b.cache.set(value, e)
	return e, value, nil
}

func storeErr(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", errs.ErrSessionStore, op, err)
}

func (b *recordBackend) load(r *http.Request) (*Data, error) {
	e, value, err := b.entry(r)
	if e == nil || err != nil {
		return nil, err
	}
	ctx := b.ctx(r)
	raw, version, err := b.store.LoadSession(ctx, e.id)
	ctx.release()
	if err != nil {
		return nil, storeErr("load", err)
	}
	if version == 0 {
		return nil, fmt.Errorf("%w: unknown or expired session id", ErrInvalid)
	}
	sum := maphash.Bytes(b.seed, raw)
	if e.data != nil && version == e.version && sum == e.sum {
		// Decoded once, when this version was first read. The bytes are
		// compared too, by a 64-bit hash (tens of nanoseconds): a store
		// that lost writes (a failover to a lagging replica) may give a
		// version number a second time, with other contents.
		return e.data, nil
	}
	d := new(Data)
	if err := d.unmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	d.sid, d.version = e.id, version
	b.cache.set(value, &recordEntry{id: e.id, version: version, sum: sum, data: d})
	return d, nil
}

func (b *recordBackend) save(w http.ResponseWriter, r *http.Request, d *Data, c *http.Cookie, renew bool) error {
	raw, err := d.marshalBinary()
	if err != nil {
		return err
	}
	sub := ""
	if d.LoggedIn() {
		sub = d.User.ID
	}
	expires := b.opt.Now().Add(time.Duration(c.MaxAge) * time.Second)
	id := d.sid
	if !renew && id != "" && d.version != 0 {
		// A write-back of the session this request loaded (a refresh, an
		// idle-timeout slide): only if nothing
		// wrote or deleted it since, so a logout or revocation on any
		// instance is never undone.
		if err := b.replace(r, d, raw, sub, expires); err != nil {
			return err
		}
	} else {
		if renew {
			// No id from before a login becomes a logged-in session (no
			// fixation): the login gets a new id, and the old one goes.
			if err := b.retire(r, d); err != nil {
				return err
			}
		}
		if id, err = b.create(r, raw, sub, d.SID, expires, d.LoginAt); err != nil {
			return err
		}
	}
	value, err := b.writer.Encode(b.opt.Name, []byte(id))
	if err != nil {
		return fmt.Errorf("session: sealing the session id: %w", err)
	}
	return writeCookie(w, c, value, "shorten the cookie name")
}

// replace writes d back over the version it was loaded at. When another
// request wrote the same login meanwhile (another tab's idle slide, the
// other half of a shared token refresh), it merges and tries again on the
// version now stored: the later LastSeen, and the tokens with the later
// expiry, so that neither a slide nor a refresh loses the other's rotated
// refresh token. A session deleted, revoked or logged in anew meanwhile is
// ErrInvalid, and is never written.
func (b *recordBackend) replace(r *http.Request, d *Data, raw []byte, sub string, expires time.Time) error {
	id, version := d.sid, d.version
	for range 3 {
		ctx := b.ctx(r)
		ok, err := b.store.ReplaceSession(ctx, id, version, raw, sub, d.SID, expires)
		ctx.release()
		if err != nil {
			return storeErr("save", err)
		}
		if ok {
			return nil
		}
		curRaw, curVersion, err := b.reload(r, id, version)
		if err != nil {
			return storeErr("save", err)
		}
		if curVersion == 0 {
			return fmt.Errorf("%w: the session ended while this request ran", ErrInvalid)
		}
		cur := new(Data)
		if err := cur.unmarshalBinary(curRaw); err != nil || !sameLogin(cur, d) {
			return fmt.Errorf("%w: the session changed while this request ran", ErrInvalid)
		}
		merged := d.Clone()
		if cur.LastSeen.After(merged.LastSeen) {
			merged.LastSeen = cur.LastSeen
		}
		if cur.Tokens != nil && (merged.Tokens == nil || cur.Tokens.Expiry.After(merged.Tokens.Expiry)) {
			t := *cur.Tokens
			merged.Tokens = &t
		}
		if raw, err = merged.marshalBinary(); err != nil {
			return err
		}
		version = curVersion
	}
	return fmt.Errorf("%w: the session kept changing while this request ran", ErrInvalid)
}

// staleWait bounds how long reload waits for a store's local cache to stop
// serving a version the store has just refused to replace.
const staleWait = 100 * time.Millisecond

// reload reads the record under id after a compare-and-set on version
// refused failed. A store with a local cache (redisstore) may serve that
// version for a moment longer, until the invalidation of the write that won
// reaches it (with rueidis, even when this process wrote: the write may go
// out on another connection than the cached read): such a read is stale by
// definition, so reload reads again,
// every millisecond for at most staleWait, instead of merging onto it and
// failing again.
func (b *recordBackend) reload(r *http.Request, id string, refused uint64) ([]byte, uint64, error) {
	deadline := time.Now().Add(staleWait)
	for {
		ctx := b.ctx(r)
		raw, version, err := b.store.LoadSession(ctx, id)
		ctx.release()
		if err != nil || version != refused {
			return raw, version, err
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("the store still serves version %d of the session %s after refusing to replace it", refused, staleWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// sameLogin reports whether a and b hold the same login: the same user,
// logged in at the same time, with the same provider session.
func sameLogin(a, b *Data) bool {
	return a.LoggedIn() == b.LoggedIn() && a.LoginAt.Equal(b.LoginAt) && a.User.ID == b.User.ID && a.SID == b.SID
}

// create stores raw under a new id and returns the id.
func (b *recordBackend) create(r *http.Request, raw []byte, sub, sid string, expires, loginAt time.Time) (string, error) {
	for range 3 {
		id, err := b.newID(sub)
		if err != nil {
			return "", storeErr("create", err)
		}
		ctx := b.ctx(r)
		ok, err := b.createRecord(ctx, r, id, raw, sub, sid, expires, loginAt)
		ctx.release()
		if err != nil {
			return "", storeErr("create", err)
		}
		if ok {
			return id, nil
		}
		// 128 random bits collide only if the random source is broken or
		// the store is: try again, then give up.
	}
	return "", storeErr("create", errors.New("three new random session ids were all taken already"))
}

// retire deletes the session r carried before a login, if any (an expired
// session, another user's): no id from before a login becomes a logged-in
// session. Logins in flight live in cookies of their own (see
// Manager.StartAttempt), never under a session id, so nothing else is kept.
func (b *recordBackend) retire(r *http.Request, d *Data) error {
	id := d.sid
	if id == "" {
		e, _, err := b.entry(r)
		if e == nil || err != nil {
			return nil // no session of ours to retire
		}
		id = e.id
	}
	return b.delete(r, id)
}

func (b *recordBackend) delete(r *http.Request, id string) error {
	ctx := b.ctx(r)
	err := b.store.DeleteSession(ctx, id)
	ctx.release()
	if err != nil {
		return storeErr("delete", err)
	}
	return nil
}

func (b *recordBackend) clear(w http.ResponseWriter, r *http.Request) error {
	e, value, err := b.entry(r)
	if err == nil && e != nil {
		if err := b.delete(r, e.id); err != nil {
			return err // keep the cookie: the session still exists
		}
		// Forget the decoded session: a copy of the cookie now finds
		// nothing in the store, and the memory goes back.
		b.cache.set(value, &recordEntry{id: e.id})
	}
	w.Header().Add("Set-Cookie", cookieFor(b.opt, "", -1).String())
	return nil
}

// revocable returns the backend when it can revoke.
func (m *Manager) revocable() (*recordBackend, bool) {
	b, ok := m.backend.(*recordBackend)
	return b, ok
}

// errNoRevocation is returned by the revocation methods of a Manager whose
// sessions cannot be revoked server-side.
var errNoRevocation = errors.New("session: the session store cannot revoke sessions: use a store that implements RevocableStore (for example redisstore)")

// CanRevoke reports whether the Manager keeps sessions in a RevocableStore,
// so that RevokeSID, RevokeSubject and Remember work. Cookie sessions and
// plain gorilla stores cannot revoke.
func (m *Manager) CanRevoke() bool {
	_, ok := m.revocable()
	return ok
}

// RevokeSID ends every session recorded with the provider's session id sid
// (the ID token's sid claim, OpenID Connect Back-Channel Logout 1.0 section
// 2.4), on every instance, and returns how many it ended. Errors wrap
// pipaauth.ErrSessionStore when the store failed, pipaauth.ErrConfig when
// CanRevoke is false or sid is "". ctx bounds the call, as does
// StoreTimeout.
func (m *Manager) RevokeSID(ctx context.Context, sid string) (int, error) {
	return m.revoke(ctx, "sid", sid, func(s RevocableStore, ctx context.Context) (int, error) { return s.RevokeSID(ctx, sid) })
}

// RevokeSubject ends every session of the user sub (the ID token's sub
// claim) on every instance and returns how many it ended. Errors as
// RevokeSID.
func (m *Manager) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return m.revoke(ctx, "sub", sub, func(s RevocableStore, ctx context.Context) (int, error) { return s.RevokeSubject(ctx, sub) })
}

func (m *Manager) revoke(ctx context.Context, what, v string, fn func(RevocableStore, context.Context) (int, error)) (int, error) {
	b, ok := m.revocable()
	if !ok {
		return 0, fmt.Errorf("%w: %w", errs.ErrConfig, errNoRevocation)
	}
	if v == "" {
		return 0, fmt.Errorf("%w: revoking by an empty %s", errs.ErrConfig, what)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opt.StoreTimeout)
	defer cancel()
	n, err := fn(b.store, ctx)
	if err != nil {
		return n, storeErr("revoke by "+what, err)
	}
	return n, nil
}

// Forget removes a key Remember recorded (see RevocableStore.Forget).
// Errors as Remember.
func (m *Manager) Forget(ctx context.Context, key string) error {
	b, ok := m.revocable()
	if !ok {
		return fmt.Errorf("%w: %w", errs.ErrConfig, errNoRevocation)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opt.StoreTimeout)
	defer cancel()
	if err := b.store.Forget(ctx, key); err != nil {
		return storeErr("forget", err)
	}
	return nil
}

// Remember records key for ttl in the store, shared by every instance, and
// reports whether this call recorded it first: an atomic set-if-absent,
// for refusing a replayed logout token's jti. Errors as RevokeSID; ttl must
// be positive.
// RememberedChecker is implemented by a RevocableStore that can tell
// whether a key Remember recorded is still there without recording it
// (Redis EXISTS), detected with a type assertion. A login uses it to check
// whether its sid was revoked by a back-channel logout; without it the
// check is a Remember with a 1 ms ttl, which two logins of one sid at the
// same millisecond can take for each other's revocation (and a store whose
// clock stands still never forgets). redisstore and memstore implement it.
type RememberedChecker interface {
	// Remembered reports whether key was recorded by Remember and has not
	// expired or been forgotten.
	Remembered(ctx context.Context, key string) (bool, error)
}

// CanLookUp reports whether the store can tell whether a key is
// remembered without recording it (RememberedChecker).
// For wiring only: applications use package pipaauth.
func (m *Manager) CanLookUp() bool {
	b, ok := m.revocable()
	if !ok {
		return false
	}
	_, ok = b.store.(RememberedChecker)
	return ok
}

// Remembered reports whether key is recorded, with supported false when the
// store cannot tell without recording it (it lacks RememberedChecker).
// For wiring only: applications use package pipaauth.
func (m *Manager) Remembered(ctx context.Context, key string) (found, supported bool, err error) {
	b, ok := m.revocable()
	if !ok {
		return false, false, fmt.Errorf("%w: %w", errs.ErrConfig, errNoRevocation)
	}
	c, ok := b.store.(RememberedChecker)
	if !ok {
		return false, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opt.StoreTimeout)
	defer cancel()
	found, err = c.Remembered(ctx, key)
	if err != nil {
		return false, true, storeErr("remembered", err)
	}
	return found, true, nil
}

func (m *Manager) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	b, ok := m.revocable()
	if !ok {
		return false, fmt.Errorf("%w: %w", errs.ErrConfig, errNoRevocation)
	}
	if key == "" || ttl <= 0 {
		return false, fmt.Errorf("%w: Remember needs a key and a positive ttl", errs.ErrConfig)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opt.StoreTimeout)
	defer cancel()
	first, err := b.store.Remember(ctx, key, ttl)
	if err != nil {
		return false, storeErr("remember", err)
	}
	return first, nil
}
