package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// valueKey is where the serialized Data sits in a gorilla session's Values.
const valueKey = "pipaauth"

// storeBackend keeps the session in a gorilla sessions.Store; the cookie the
// store writes holds only its session id. gorilla's Store takes no context
// and a store's client may set no timeouts, so every call runs in its own
// goroutine, bounded by StoreTimeout, and at most StoreMaxInflight calls may
// be outstanding at once: a frozen store costs at most that many goroutines,
// and requests beyond them fail at once instead of queueing.
type storeBackend struct {
	opt   Options
	store sessions.Store
	slots chan struct{}
}

func newStoreBackend(opt Options) *storeBackend {
	return &storeBackend{opt: opt, store: opt.Store, slots: make(chan struct{}, opt.StoreMaxInflight)}
}

// call runs fn under the timeout and the cap on outstanding calls.
func (b *storeBackend) call(ctx context.Context, op string, fn func() error) error {
	select {
	case b.slots <- struct{}{}:
	default:
		return fmt.Errorf("%w: %s: %d calls to the session store are already outstanding", errs.ErrSessionStore, op, cap(b.slots))
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-b.slots }()
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("session store panicked: %v", p)
			}
		}()
		done <- fn()
	}()
	timer := time.NewTimer(b.opt.StoreTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("%w: %s: no answer within %s", errs.ErrSessionStore, op, b.opt.StoreTimeout)
	case <-ctx.Done():
		return fmt.Errorf("%w: %s: %w", errs.ErrSessionStore, op, ctx.Err())
	}
}

// cookieOnly returns a request carrying only r's cookies, for the store's
// goroutine: r itself may be reused by its handler after a timeout.
func cookieOnly(r *http.Request) *http.Request {
	return &http.Request{Method: http.MethodGet, Header: http.Header{"Cookie": r.Header["Cookie"]}}
}

// get asks the store for the session r carries. A cookie the store cannot
// decode (tampered, foreign keys) is ErrInvalid, not a store failure.
func (b *storeBackend) get(r *http.Request) (*sessions.Session, error) {
	if v, _ := cookieValue(r.Header, b.opt.Name); len(v) > MaxCookieBytes {
		// Nothing this package writes is that long; the store's codec
		// would refuse it with an error of no particular type.
		return nil, fmt.Errorf("%w: a session cookie of %d bytes", ErrInvalid, len(v))
	}
	req := cookieOnly(r)
	var s *sessions.Session
	err := b.call(r.Context(), "load", func() error {
		var err error
		s, err = b.store.New(req, b.opt.Name)
		return err
	})
	if err != nil {
		var sc securecookie.Error
		// A file-backed store (gorilla's FilesystemStore) reports an
		// unknown or deleted id as a missing file.
		if errors.As(err, &sc) && sc.IsDecode() || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if errors.Is(err, errs.ErrSessionStore) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: load: %w", errs.ErrSessionStore, err)
	}
	return s, nil
}

func (b *storeBackend) load(r *http.Request) (*Data, error) {
	if _, ok := cookieValue(r.Header, b.opt.Name); !ok {
		return nil, nil
	}
	s, err := b.get(r)
	if err != nil {
		return nil, err
	}
	if s == nil || s.IsNew || s.ID == "" {
		return nil, fmt.Errorf("%w: unknown or expired session id", ErrInvalid)
	}
	return dataOf(s)
}

// dataOf decodes the pipaauth data a gorilla session holds.
func dataOf(s *sessions.Session) (*Data, error) {
	var raw []byte
	switch v := s.Values[valueKey].(type) {
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	default:
		return nil, fmt.Errorf("%w: the stored session holds no pipaauth data", ErrInvalid)
	}
	d := new(Data)
	if err := d.unmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	d.sid = s.ID
	return d, nil
}

func (b *storeBackend) save(w http.ResponseWriter, r *http.Request, d *Data, c *http.Cookie, renew bool) error {
	if renew {
		// The id the browser had must not become a logged-in session (no
		// fixation): the new data gets a new id, the old one is deleted.
		if err := b.delete(r); err != nil {
			return err
		}
	}
	raw, err := d.marshalBinary()
	if err != nil {
		return err
	}
	s := sessions.NewSession(b.store, b.opt.Name)
	s.IsNew = true
	if !renew && d.sid != "" {
		// Writing back a session loaded earlier in this request (a refresh,
		// an idle-timeout slide): if it was deleted meanwhile (a logout on
		// any instance), do not bring it back. gorilla's Store has no
		// compare-and-set, so this narrows the race to one store round trip.
		cur, err := b.get(r)
		if err != nil {
			return err
		}
		if cur == nil || cur.IsNew || cur.ID != d.sid {
			return fmt.Errorf("%w: the session ended while this request ran", ErrInvalid)
		}
		// The id may still exist but hold other data (a session written
		// by an older version). Only the same login may be written back,
		// so a retired id never becomes logged in again.
		if now, err := dataOf(cur); err != nil || now.LoggedIn() != d.LoggedIn() ||
			!now.LoginAt.Equal(d.LoginAt) || now.User.ID != d.User.ID {
			return fmt.Errorf("%w: the session changed while this request ran", ErrInvalid)
		}
		s.ID, s.IsNew = d.sid, false
	}
	s.Values[valueKey] = raw
	s.Options = optionsOf(c)
	rec := headerWriter{}
	req := cookieOnly(r)
	if err := b.call(r.Context(), "save", func() error { return b.store.Save(req, rec, s) }); err != nil {
		if errors.Is(err, errs.ErrSessionStore) {
			return err
		}
		return fmt.Errorf("%w: save: %w", errs.ErrSessionStore, err)
	}
	for _, sc := range rec["Set-Cookie"] {
		if n := len(sc); n > MaxCookieBytes {
			return fmt.Errorf("%w (%d bytes) although the session is server-side: check the store's cookie settings", errs.ErrCookieTooLarge, n)
		}
	}
	for _, sc := range rec["Set-Cookie"] {
		w.Header().Add("Set-Cookie", sc)
	}
	return nil
}

// delete removes the server-side session r carries, if any.
func (b *storeBackend) delete(r *http.Request) error {
	if _, ok := cookieValue(r.Header, b.opt.Name); !ok {
		return nil
	}
	s, err := b.get(r)
	if errors.Is(err, ErrInvalid) || (err == nil && (s == nil || s.IsNew || s.ID == "")) {
		return nil // nothing of ours to delete
	}
	if err != nil {
		return err
	}
	s.Options = optionsOf(cookieFor(b.opt, "", -1))
	req := cookieOnly(r)
	if err := b.call(r.Context(), "delete", func() error { return b.store.Save(req, headerWriter{}, s) }); err != nil {
		if errors.Is(err, errs.ErrSessionStore) {
			return err
		}
		return fmt.Errorf("%w: delete: %w", errs.ErrSessionStore, err)
	}
	return nil
}

func (b *storeBackend) clear(w http.ResponseWriter, r *http.Request) error {
	if err := b.delete(r); err != nil {
		return err
	}
	w.Header().Add("Set-Cookie", cookieFor(b.opt, "", -1).String())
	return nil
}

// optionsOf turns the cookie attributes the Manager chose into gorilla
// options, so the store writes the package's flags, never its defaults.
func optionsOf(c *http.Cookie) *sessions.Options {
	return &sessions.Options{
		Path:     c.Path,
		MaxAge:   c.MaxAge,
		Secure:   c.Secure,
		HttpOnly: c.HttpOnly,
		SameSite: c.SameSite,
	}
}

// headerWriter collects the headers a store writes; nothing reaches the
// client unless the call succeeds in time.
type headerWriter http.Header

func (h headerWriter) Header() http.Header       { return http.Header(h) }
func (headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (headerWriter) WriteHeader(int)             {}
