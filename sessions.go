package pipaauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/session"
)

// SessionInfo describes one of a user's sessions, for a "where you're signed in" page or an admin tool.
type SessionInfo struct {
	ID        string // opaque handle, safe to put in a page: neither the cookie value nor the store id
	Current   bool   // the session of the request (Sessions only)
	LoginAt   time.Time
	LastSeen  time.Time // last activity written back
	UserAgent string    // the login request's User-Agent, at most 256 bytes
}

// ErrSessionNotFound is returned by EndSession when the id is not one of
// this user's live sessions: it ended already (elsewhere, or it expired),
// or it is not an ID that Sessions gave for this user.
var ErrSessionNotFound error = session.ErrSessionNotFound

// SessionLister is an optional interface of a RevocableStore that lists a
// user's sessions; pipaauth detects it with a type assertion, as it does
// RevocableStore, and needs it for Sessions, EndSession, EndOtherSessions,
// UserSessions and EndUserSessions. redisstore and memstore implement it;
// a PostgreSQL store would keep the login time, last write and User-Agent
// in columns beside the session and select by sub. See
// session.SessionLister for the contract.
type SessionLister = session.SessionLister

// StoredSession is what a SessionLister reports of one session.
type StoredSession = session.StoredSession

// SessionIDMaker is an optional interface of a RevocableStore that chooses
// the ids of new sessions (redisstore puts the user's Redis Cluster hash
// tag in them). See session.IDMaker.
type SessionIDMaker = session.IDMaker

// Sessions returns the live sessions of the request's user, most recent
// login first, the request's own marked Current: for a "where you're signed
// in" page. Each SessionInfo.ID is an opaque handle to pass to EndSession
// (an HMAC of the store's id under a key derived from SessionKeys: it
// reveals neither the cookie nor the store id, and changes when the
// SessionKeys rotate).
//
// Errors wrap errors.ErrUnsupported when the SessionStore cannot list
// sessions (cookie sessions, plain gorilla stores: use a SessionLister such
// as redisstore or memstore), ErrLoginRequired when r has no live session,
// ErrSessionStore when the store failed.
func (a *Auth) Sessions(r *http.Request) ([]SessionInfo, error) {
	d, err := a.listingUser(r)
	if err != nil {
		return nil, err
	}
	list, err := a.sessions.ListSessions(r.Context(), d.User.ID, d)
	if err != nil {
		return nil, err
	}
	return sessionInfos(list), nil
}

// EndSession ends the request's user's session whose SessionInfo.ID is id,
// on every instance at once (a revocation, as logout: redisstore's
// instances refuse it within a round trip, and a write-back of it never
// revives it). Ending the request's own session also clears its cookie on
// w (call it before writing the response); unlike LogoutHandler, it does
// not revoke tokens at PiPA or end PiPA's session.
//
// Errors wrap ErrSessionNotFound when id is none of the user's live
// sessions, otherwise as Sessions.
func (a *Auth) EndSession(w http.ResponseWriter, r *http.Request, id string) error {
	d, err := a.listingUser(r)
	if err != nil {
		return err
	}
	current, err := a.sessions.EndSession(r.Context(), d.User.ID, id, d)
	if err != nil {
		return err
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: a session ended by its user", slog.String("user", d.User.ID), slog.Bool("current", current))
	if current {
		// Deleted already; this clears the cookie (and deletes nothing more).
		if err := a.sessions.Clear(w, r); err != nil {
			return err
		}
	}
	return nil
}

// EndOtherSessions ends every session of the request's user except the
// request's own ("sign out my other devices"), on every instance, and
// returns how many it ended. Errors as Sessions; on a store failure part
// of them may have ended (the count says how many).
func (a *Auth) EndOtherSessions(r *http.Request) (int, error) {
	d, err := a.listingUser(r)
	if err != nil {
		return 0, err
	}
	n, err := a.sessions.EndOtherSessions(r.Context(), d.User.ID, d)
	if n > 0 {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: other sessions ended by their user", slog.String("user", d.User.ID), slog.Int("sessions", n))
	}
	return n, err
}

// UserSessions returns the live sessions of the user userID (User.ID, the
// ID token's sub), most recent login first, for an administrator's tool;
// none is an empty slice. No SessionInfo is Current. Errors wrap
// errors.ErrUnsupported as for Sessions, ErrConfig when userID is "",
// ErrSessionStore when the store failed.
func (a *Auth) UserSessions(ctx context.Context, userID string) ([]SessionInfo, error) {
	if err := a.listingStore(); err != nil {
		return nil, err
	}
	list, err := a.sessions.ListSessions(ctx, userID, nil)
	if err != nil {
		return nil, err
	}
	return sessionInfos(list), nil
}

// EndUserSessions ends every session of the user userID on every instance
// ("sign this user out everywhere": an account disabled, a password
// changed, a stolen laptop) and returns how many it ended. A write-back of
// one of them in flight never revives it. Errors as UserSessions.
func (a *Auth) EndUserSessions(ctx context.Context, userID string) (int, error) {
	if err := a.listingStore(); err != nil {
		return 0, err
	}
	n, err := a.sessions.EndUserSessions(ctx, userID)
	if err != nil {
		return n, err
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "pipaauth: every session of a user ended", slog.String("user", userID), slog.Int("sessions", n))
	return n, nil
}

// listingStore returns an error wrapping errors.ErrUnsupported when the
// session store cannot list sessions.
func (a *Auth) listingStore() error {
	if !a.sessions.CanList() {
		return fmt.Errorf("pipaauth: Config.SessionStore cannot list or end a user's sessions (cookie sessions and plain gorilla stores cannot): use a store that implements pipaauth.SessionLister, such as redisstore or memstore: %w", errors.ErrUnsupported)
	}
	return nil
}

// listingUser returns r's live logged-in session, or the error the request
// methods return.
func (a *Auth) listingUser(r *http.Request) (*session.Data, error) {
	if err := a.listingStore(); err != nil {
		return nil, err
	}
	d, err := a.sessions.Load(r)
	if errors.Is(err, errs.ErrSessionStore) {
		return nil, err
	}
	if err != nil || !d.LoggedIn() {
		cause := errors.New("the request has no live session")
		if err != nil {
			cause = err
		}
		return nil, fmt.Errorf("%w: %w", ErrLoginRequired, cause)
	}
	return d, nil
}

func sessionInfos(list []session.Listed) []SessionInfo {
	out := make([]SessionInfo, len(list))
	for i, l := range list {
		out[i] = SessionInfo{ID: l.Handle, Current: l.Current, LoginAt: l.LoginAt, LastSeen: l.LastSeen, UserAgent: l.UserAgent}
	}
	return out
}
