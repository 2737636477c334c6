// Package memstore keeps pipaauth sessions in the memory of one process: a
// pipaauth.RevocableStore and pipaauth.SessionLister for a single instance,
// tests and demos, with no dependency beyond the standard library and
// gorilla/sessions (which pipaauth already needs).
//
// Sessions live as long as the process: a restart logs everyone out, and
// two instances do not see each other's sessions (use redisstore for
// those). Everything else behaves as a server-side store should: logout,
// revocation by sid or sub and the listing API of pipaauth (Sessions,
// EndSession, EndOtherSessions, UserSessions, EndUserSessions) take effect
// at once, and write-backs are compare-and-set, so they never revive an
// ended session.
//
//	store := memstore.New(memstore.Options{})
//	auth, err := pipaauth.New(ctx, pipaauth.Config{
//		// ...
//		SessionStore: store,
//	})
package memstore

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/session"
)

// Options configure a Store. The zero value of every field is its default.
type Options struct {
	// Now is the clock that expires sessions and Remember's keys and
	// stamps a write-back's last-seen time. Default time.Now.
	Now func() time.Time
	// MaxSessionsPerUser caps the live sessions of one user (sub): a
	// login beyond it ends that user's sessions that expire first (the
	// oldest logins), so that one account cannot fill memory. Default 0:
	// DefaultMaxSessionsPerUser (100); negative: no cap.
	MaxSessionsPerUser int
}

// DefaultMaxSessionsPerUser is Options.MaxSessionsPerUser when zero, as
// redisstore's.
const DefaultMaxSessionsPerUser = 100

// Store keeps sessions in memory. It is safe for concurrent use. Create it
// with New.
type Store struct {
	now        func() time.Time
	maxPerUser int // 0: no cap

	mu       sync.Mutex
	records  map[string]*record             // session id -> record
	bySub    map[string]map[string]struct{} // sub -> session ids
	bySID    map[string]map[string]struct{} // sid -> session ids
	seen     map[string]time.Time           // Remember's keys -> expiry
	versions uint64                         // the last version given out: versions never repeat
	writes   int                            // writes since the last sweep of expired entries
}

type record struct {
	data      []byte
	version   uint64
	sub, sid  string
	expires   time.Time
	loginAt   time.Time
	lastSeen  time.Time
	userAgent string
}

// New returns an empty Store.
func New(opt Options) *Store {
	s := &Store{
		now:     opt.Now,
		records: map[string]*record{},
		bySub:   map[string]map[string]struct{}{},
		bySID:   map[string]map[string]struct{}{},
		seen:    map[string]time.Time{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case opt.MaxSessionsPerUser == 0:
		s.maxPerUser = DefaultMaxSessionsPerUser
	case opt.MaxSessionsPerUser > 0:
		s.maxPerUser = opt.MaxSessionsPerUser
	}
	return s
}

// Interface checks.
var (
	_ sessions.Store         = (*Store)(nil)
	_ session.RevocableStore = (*Store)(nil)
	_ session.SessionLister  = (*Store)(nil)
)

// live returns the record of id unless it expired (then it is dropped).
// Call with mu held.
func (s *Store) live(id string, now time.Time) *record {
	r := s.records[id]
	if r != nil && !now.Before(r.expires) {
		s.drop(id, r)
		return nil
	}
	return r
}

// drop removes id and its index entries. Call with mu held.
func (s *Store) drop(id string, r *record) {
	delete(s.records, id)
	unindex(s.bySub, r.sub, id)
	unindex(s.bySID, r.sid, id)
}

func index(m map[string]map[string]struct{}, key, id string) {
	if key == "" {
		return
	}
	ids := m[key]
	if ids == nil {
		ids = map[string]struct{}{}
		m[key] = ids
	}
	ids[id] = struct{}{}
}

func unindex(m map[string]map[string]struct{}, key, id string) {
	if ids := m[key]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m, key)
		}
	}
}

// sweep drops expired records and keys every 1,024 writes, so that memory
// follows the live sessions without a goroutine. Call with mu held.
func (s *Store) sweep(now time.Time) {
	if s.writes++; s.writes < 1024 {
		return
	}
	s.writes = 0
	for id, r := range s.records {
		if !now.Before(r.expires) {
			s.drop(id, r)
		}
	}
	for k, exp := range s.seen {
		if !now.Before(exp) {
			delete(s.seen, k)
		}
	}
}

// LoadSession returns a copy of the session under id and its version;
// version 0 when there is none. See pipaauth.RevocableStore.
func (s *Store) LoadSession(ctx context.Context, id string) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.live(id, s.now())
	if r == nil {
		return nil, 0, nil
	}
	return append([]byte(nil), r.data...), r.version, nil
}

// CreateSession stores a new session; created is false when id exists.
// See pipaauth.RevocableStore.
func (s *Store) CreateSession(ctx context.Context, id string, data []byte, sub, sid string, expires time.Time) (bool, error) {
	return s.create(ctx, id, data, sub, sid, expires, time.Time{}, "")
}

// CreateListedSession is CreateSession keeping the login time and the
// User-Agent (cut to session.MaxUserAgentBytes) for ListSessions. See
// pipaauth.SessionLister.
func (s *Store) CreateListedSession(ctx context.Context, id string, data []byte, sub, sid string, expires, loginAt time.Time, userAgent string) (bool, error) {
	if len(userAgent) > session.MaxUserAgentBytes {
		userAgent = userAgent[:session.MaxUserAgentBytes]
	}
	return s.create(ctx, id, data, sub, sid, expires, loginAt, userAgent)
}

func (s *Store) create(ctx context.Context, id string, data []byte, sub, sid string, expires, loginAt time.Time, ua string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if id == "" {
		return false, errors.New("memstore: creating a session with an empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	if s.live(id, now) != nil {
		return false, nil
	}
	s.versions++
	s.records[id] = &record{
		data: append([]byte(nil), data...), version: s.versions, sub: sub, sid: sid,
		expires: expires, loginAt: loginAt, lastSeen: loginAt, userAgent: ua,
	}
	index(s.bySub, sub, id)
	index(s.bySID, sid, id)
	s.capLocked(sub)
	return true, nil
}

// capLocked ends the sessions of sub beyond maxPerUser, those that expire
// first.
func (s *Store) capLocked(sub string) {
	ids := s.bySub[sub]
	if sub == "" || s.maxPerUser <= 0 || len(ids) <= s.maxPerUser {
		return
	}
	type entry struct {
		id      string
		expires time.Time
	}
	all := make([]entry, 0, len(ids))
	for id := range ids {
		if r := s.records[id]; r != nil {
			all = append(all, entry{id, r.expires})
		}
	}
	slices.SortFunc(all, func(a, b entry) int { return a.expires.Compare(b.expires) })
	for _, e := range all[:max(0, len(all)-s.maxPerUser)] {
		s.drop(e.id, s.records[e.id])
	}
}

// ReplaceSession overwrites the session under id if its version is still
// version, and stamps its last-seen time. See pipaauth.RevocableStore.
func (s *Store) ReplaceSession(ctx context.Context, id string, version uint64, data []byte, sub, sid string, expires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	r := s.live(id, now)
	if r == nil || r.version != version {
		return false, nil
	}
	unindex(s.bySub, r.sub, id)
	unindex(s.bySID, r.sid, id)
	s.versions++
	next := *r
	next.data, next.version, next.sub, next.sid, next.expires, next.lastSeen = append([]byte(nil), data...), s.versions, sub, sid, expires, now
	s.records[id] = &next
	index(s.bySub, sub, id)
	index(s.bySID, sid, id)
	return true, nil
}

// DeleteSession deletes the session under id; a missing id is not an
// error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.records[id]; r != nil {
		s.drop(id, r)
	}
	return nil
}

// RevokeSID deletes every session recorded with sid and returns how many
// were live.
func (s *Store) RevokeSID(ctx context.Context, sid string) (int, error) {
	return s.revoke(ctx, s.bySID, sid)
}

// RevokeSubject deletes every session of the user sub and returns how many
// were live.
func (s *Store) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return s.revoke(ctx, s.bySub, sub)
}

func (s *Store) revoke(ctx context.Context, m map[string]map[string]struct{}, key string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for id := range m[key] {
		r := s.records[id]
		if r == nil {
			continue
		}
		if now.Before(r.expires) {
			n++
		}
		s.drop(id, r)
	}
	return n, nil
}

// ListSessions returns the live sessions of sub. See pipaauth.SessionLister.
func (s *Store) ListSessions(ctx context.Context, sub string) ([]session.StoredSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := []session.StoredSession{}
	for id := range s.bySub[sub] {
		if r := s.live(id, now); r != nil {
			out = append(out, session.StoredSession{ID: id, LoginAt: r.loginAt, LastSeen: r.lastSeen, UserAgent: r.userAgent})
		}
	}
	return out, nil
}

// Remember records key for ttl unless it is recorded and unexpired, and
// reports whether it did.
func (s *Store) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, errors.New("memstore: Remember needs a positive ttl")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	if exp, ok := s.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	s.seen[key] = now.Add(ttl)
	return true, nil
}

// Remembered reports whether a key Remember recorded is still there,
// without recording it (session.RememberedChecker).
func (s *Store) Remembered(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.seen[key]
	return ok && s.now().Before(exp), nil
}

// Forget removes a key Remember recorded.
func (s *Store) Forget(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, key)
	return nil
}

// errGorilla is what the gorilla methods return: pipaauth never calls them.
var errGorilla = errors.New("memstore: the gorilla sessions.Store methods are not implemented: give the Store to pipaauth.Config.SessionStore, which uses it as a pipaauth.RevocableStore")

// Get implements sessions.Store for Config.SessionStore's type only; it
// returns an error (pipaauth never calls it).
func (s *Store) Get(*http.Request, string) (*sessions.Session, error) { return nil, errGorilla }

// New implements sessions.Store for Config.SessionStore's type only; it
// returns an error (pipaauth never calls it).
func (s *Store) New(*http.Request, string) (*sessions.Session, error) { return nil, errGorilla }

// Save implements sessions.Store for Config.SessionStore's type only; it
// returns an error (pipaauth never calls it).
func (s *Store) Save(*http.Request, http.ResponseWriter, *sessions.Session) error {
	return errGorilla
}
