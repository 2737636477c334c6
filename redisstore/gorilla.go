package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// The gorilla sessions.Store methods let plain gorilla code keep sessions
// in the same Redis, the way boj/redistore does: the cookie holds the
// session id sealed with Options.KeyPairs (securecookie), and Redis holds
// the session's Values gob-encoded (register your value types with
// gob.Register, as for gorilla's stores). Such sessions have no sub or sid
// and are not revocable by them. pipaauth never calls these methods: it
// uses the RevocableStore methods, with its own cookie.

var errNoKeys = errors.New("redisstore: Options.KeyPairs is empty: the gorilla Get, New and Save methods need keys to seal the session id")

// Get returns the session called name from the request's registry,
// loading it with New the first time (gorilla's sessions.Store).
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session the request's cookie called name names, or returns
// a new session (IsNew) when there is none, the cookie does not open with
// KeyPairs, or the session is gone. A Redis failure returns the new session
// and the error.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	session := sessions.NewSession(s, name)
	opts := s.options
	session.Options = &opts
	session.IsNew = true
	if len(s.codecs) == 0 {
		return session, errNoKeys
	}
	c, err := r.Cookie(name)
	if err != nil {
		return session, nil
	}
	var id string
	if err := securecookie.DecodeMulti(name, c.Value, &id, s.codecs...); err != nil {
		return session, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	data, version, err := s.LoadSession(ctx, id)
	if err != nil || version == 0 {
		return session, err
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&session.Values); err != nil {
		return session, fmt.Errorf("redisstore: decoding session values: %w", err)
	}
	session.ID, session.IsNew = id, false
	return session, nil
}

// Save writes the session to Redis, with a TTL of its Options.MaxAge, and
// its sealed id to the cookie; MaxAge < 0 deletes both.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, session *sessions.Session) error {
	if len(s.codecs) == 0 {
		return errNoKeys
	}
	opts := session.Options
	if opts == nil {
		o := s.options
		opts = &o
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	if opts.MaxAge < 0 {
		if session.ID != "" {
			if err := s.DeleteSession(ctx, session.ID); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(session.Name(), "", opts))
		return nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(session.Values); err != nil {
		return fmt.Errorf("redisstore: encoding session values: %w", err)
	}
	maxAge := opts.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge // a browser-session cookie: keep the data as long as gorilla's default
	}
	if session.ID == "" {
		session.ID = rand.Text()
	}
	s.written.mark(session.ID)
	err := upsertScript.Exec(ctx, s.client, []string{s.legacyKeys().session(session.ID)},
		[]string{buf.String(), strconv.FormatInt(int64(maxAge)*1000, 10)}).Error()
	if err != nil {
		return fmt.Errorf("redisstore: saving a session: %w", err)
	}
	value, err := securecookie.EncodeMulti(session.Name(), session.ID, s.codecs...)
	if err != nil {
		return fmt.Errorf("redisstore: sealing the session id: %w", err)
	}
	http.SetCookie(w, sessions.NewCookie(session.Name(), value, opts))
	return nil
}
