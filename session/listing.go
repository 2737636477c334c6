package session

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// MaxUserAgentBytes is the longest User-Agent a SessionLister is given to
// keep: longer ones are cut at a UTF-8 boundary at or below it.
const MaxUserAgentBytes = 256

// IDMaker is an optional interface of a RevocableStore that chooses the ids
// of new sessions itself, detected with a type assertion as
// RevocableStore is. redisstore implements it to put a tag derived from the
// user's sub into the id, so that on a Redis Cluster a user's sessions and
// indexes share a hash slot while users spread over the slots: a load by id
// then finds the slot without knowing the sub.
//
// NewSessionID returns the id of a new session of the user sub (never ""):
// at least 128 random bits (crypto/rand), 1 to 64 bytes, never returned
// before. The Manager calls it before each CreateSession or
// CreateListedSession, and retries with a new id when the store reports
// the id taken. An error (the random source failed) fails the login with
// a store error.
type IDMaker interface {
	NewSessionID(sub string) (string, error)
}

// StoredSession is what a SessionLister reports of one live session.
type StoredSession struct {
	// ID is the store's id of the session (as in LoadSession). pipaauth
	// never shows it: pages get an opaque handle derived from it.
	ID string
	// LoginAt is the loginAt given to CreateListedSession.
	LoginAt time.Time
	// LastSeen is when the session was last written (CreateListedSession,
	// or a successful ReplaceSession: a token refresh or an idle-timeout
	// slide), by the store's clock.
	LastSeen time.Time
	// UserAgent is the userAgent given to CreateListedSession (at most
	// MaxUserAgentBytes).
	UserAgent string
}

// SessionLister is an optional interface of a RevocableStore that lists a
// user's sessions, for a "where you're signed in" page and for
// administrators; detected with a type assertion as RevocableStore is.
// Ending a listed session is RevocableStore.DeleteSession; ending all of a
// user's is RevokeSubject.
//
// A store keeps, beside each record and outside its opaque data, the login
// time, the time of the last write and the login's User-Agent, so that a
// listing never decodes session data. Any store with an index by sub (the
// one RevokeSubject needs) can implement it: a PostgreSQL store adds three
// columns to its sessions table and selects by sub.
type SessionLister interface {
	// CreateListedSession is CreateSession that also records loginAt and
	// userAgent (at most MaxUserAgentBytes, possibly "") for
	// ListSessions; the Manager calls it instead of CreateSession.
	CreateListedSession(ctx context.Context, id string, data []byte, sub, sid string, expires, loginAt time.Time, userAgent string) (created bool, err error)

	// ListSessions returns the live (unexpired, undeleted) sessions of the
	// user sub, in any order; none is an empty slice and a nil error.
	// Sessions created through CreateSession (without the listing's
	// fields) are listed with zero times and no User-Agent.
	ListSessions(ctx context.Context, sub string) ([]StoredSession, error)
}

// ErrSessionNotFound is wrapped by Manager.EndSession when the handle is not
// one of the user's live sessions.
// For wiring only: applications use pipaauth.ErrSessionNotFound.
var ErrSessionNotFound = errors.New("pipaauth: no such session of this user: it ended already, or the id is not one a listing of this user's sessions gave")

// Listed is one session of a user as pipaauth shows it.
// For wiring only: applications use pipaauth.SessionInfo.
type Listed struct {
	Handle    string // opaque: an HMAC of the store id under a key derived from the session keys
	Current   bool   // the session passed as current
	LoginAt   time.Time
	LastSeen  time.Time
	UserAgent string
}

// errNoListing is wrapped by the listing methods of a Manager whose store
// cannot list sessions.
var errNoListing = fmt.Errorf("pipaauth: the session store cannot list a user's sessions (cookie sessions and plain gorilla stores cannot): set Config.SessionStore to a store that implements pipaauth.SessionLister, such as redisstore or memstore: %w", errors.ErrUnsupported)

// lister returns the backend and its store's listing, or an error wrapping
// errors.ErrUnsupported.
func (m *Manager) lister() (*recordBackend, SessionLister, error) {
	b, ok := m.revocable()
	if !ok {
		return nil, nil, errNoListing
	}
	l, ok := b.store.(SessionLister)
	if !ok {
		return nil, nil, errNoListing
	}
	return b, l, nil
}

// CanList reports whether the Manager's store lists sessions
// (SessionLister), so that the listing methods work.
// For wiring only: applications use package pipaauth.
func (m *Manager) CanList() bool {
	_, _, err := m.lister()
	return err == nil
}

// handleKeys derives, from each hash key, the key of the handles shown in
// listings: the first makes handles, every one is accepted (key rotation).
func (b *recordBackend) handleKeys() [][]byte {
	keys := make([][]byte, 0, len(b.opt.KeyPairs)/2)
	for i := 0; i < len(b.opt.KeyPairs); i += 2 {
		mac := hmac.New(sha256.New, b.opt.KeyPairs[i])
		mac.Write([]byte("pipaauth session handle v1"))
		keys = append(keys, mac.Sum(nil))
	}
	return keys
}

func listingHandle(key []byte, id string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

// list returns the live sessions of sub. ctx is bounded by StoreTimeout.
func (m *Manager) list(ctx context.Context, sub string) (*recordBackend, []StoredSession, error) {
	b, l, err := m.lister()
	if err != nil {
		return nil, nil, err
	}
	if sub == "" {
		return nil, nil, fmt.Errorf("%w: listing the sessions of an empty user id", errs.ErrConfig)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opt.StoreTimeout)
	defer cancel()
	got, err := l.ListSessions(ctx, sub)
	if err != nil {
		return nil, nil, storeErr("list", err)
	}
	return b, got, nil
}

// ListSessions returns the live sessions of the user sub, most recent login
// first; current, when not nil, is the request's session, marked Current.
// Errors wrap errors.ErrUnsupported when the store cannot list,
// pipaauth.ErrSessionStore when it failed.
// For wiring only: applications use package pipaauth.
func (m *Manager) ListSessions(ctx context.Context, sub string, current *Data) ([]Listed, error) {
	b, got, err := m.list(ctx, sub)
	if err != nil {
		return nil, err
	}
	key := b.handleKeys()[0]
	out := make([]Listed, 0, len(got))
	end := m.now().Add(-m.opt.Lifetime)
	for _, s := range got {
		if !s.LoginAt.IsZero() && !s.LoginAt.After(end) {
			continue // kept for a logout after expiry (ExpiredGrace), not live
		}
		out = append(out, Listed{
			Handle:    listingHandle(key, s.ID),
			Current:   current != nil && current.sid != "" && s.ID == current.sid,
			LoginAt:   s.LoginAt,
			LastSeen:  s.LastSeen,
			UserAgent: s.UserAgent,
		})
	}
	slices.SortFunc(out, func(a, b Listed) int {
		if c := b.LoginAt.Compare(a.LoginAt); c != 0 {
			return c
		}
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.Handle, b.Handle)
	})
	return out, nil
}

// EndSession ends the session of the user sub that handle (from
// ListSessions) names, on every instance, and reports whether it is
// current, the request's session (whose cookie the caller then clears).
// Errors wrap ErrSessionNotFound when handle names none of sub's live
// sessions, otherwise as ListSessions.
// For wiring only: applications use package pipaauth.
func (m *Manager) EndSession(ctx context.Context, sub, handleValue string, current *Data) (wasCurrent bool, err error) {
	b, got, err := m.list(ctx, sub)
	if err != nil {
		return false, err
	}
	for _, key := range b.handleKeys() {
		for _, s := range got {
			if !equal(listingHandle(key, s.ID), handleValue) {
				continue
			}
			if err := m.deleteID(ctx, b, s.ID); err != nil {
				return false, err
			}
			return current != nil && current.sid == s.ID, nil
		}
	}
	return false, ErrSessionNotFound
}

// EndOtherSessions ends every live session of sub except current's and
// returns how many it ended. Errors as ListSessions.
// For wiring only: applications use package pipaauth.
func (m *Manager) EndOtherSessions(ctx context.Context, sub string, current *Data) (int, error) {
	b, got, err := m.list(ctx, sub)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range got {
		if current != nil && s.ID == current.sid {
			continue
		}
		if err := m.deleteID(ctx, b, s.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// EndUserSessions ends every session of the user sub (RevokeSubject) and
// returns how many. Errors as ListSessions.
// For wiring only: applications use package pipaauth.
func (m *Manager) EndUserSessions(ctx context.Context, sub string) (int, error) {
	if _, _, err := m.lister(); err != nil {
		return 0, err
	}
	return m.RevokeSubject(ctx, sub)
}

func (m *Manager) deleteID(ctx context.Context, b *recordBackend, id string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opt.StoreTimeout)
	defer cancel()
	if err := b.store.DeleteSession(ctx, id); err != nil {
		return storeErr("end a session", err)
	}
	return nil
}

// userAgent returns r's User-Agent cut to MaxUserAgentBytes at a UTF-8
// boundary, with invalid bytes replaced.
func userAgent(r *http.Request) string {
	if r == nil {
		return ""
	}
	ua := r.UserAgent()
	if !utf8.ValidString(ua) {
		ua = string([]rune(ua)) // invalid bytes become U+FFFD
	}
	if len(ua) > MaxUserAgentBytes {
		cut := MaxUserAgentBytes
		for cut > 0 && !utf8.RuneStart(ua[cut]) {
			cut--
		}
		ua = ua[:cut]
	}
	return ua
}

// newID returns the id of a new session of sub: the store's when it
// chooses ids (IDMaker), else 128 random bits.
func (b *recordBackend) newID(sub string) (string, error) {
	if m, ok := b.store.(IDMaker); ok {
		id, err := m.NewSessionID(sub)
		if err != nil {
			return "", err
		}
		if id == "" || len(id) > 64 {
			return "", fmt.Errorf("the store's NewSessionID returned an id of %d bytes: want 1 to 64", len(id))
		}
		return id, nil
	}
	return rand.Text(), nil
}

// createRecord calls CreateListedSession when the store lists sessions,
// CreateSession otherwise.
func (b *recordBackend) createRecord(ctx context.Context, r *http.Request, id string, raw []byte, sub, sid string, expires, loginAt time.Time) (bool, error) {
	if l, ok := b.store.(SessionLister); ok {
		return l.CreateListedSession(ctx, id, raw, sub, sid, expires, loginAt, userAgent(r))
	}
	return b.store.CreateSession(ctx, id, raw, sub, sid, expires)
}
