package session

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// MaxCookieBytes is the largest Set-Cookie header value (name, value and
// attributes) the Manager writes. Browsers may drop larger cookies silently;
// the Manager returns ErrCookieTooLarge instead.
// For wiring only: applications use package pipaauth.
const MaxCookieBytes = 4096

// ErrInvalid is wrapped by Load when a cookie is present but unusable:
// tampered, sealed with unknown keys, malformed or expired. Callers treat the
// request as having no session.
// For wiring only: applications use package pipaauth.
var ErrInvalid = errors.New("session: invalid session cookie")

// Options configure a Manager. Durations must be positive unless noted.
// For wiring only: applications use package pipaauth.
type Options struct {
	Name        string           // cookie name, including any __Host- prefix
	Secure      bool             // set the Secure attribute
	KeyPairs    [][]byte         // hashKey, blockKey pairs; the first pair writes
	Lifetime    time.Duration    // absolute session lifetime from login
	IdleTimeout time.Duration    // 0: none; else log out after this long without a written-back request
	AttemptTTL  time.Duration    // how long a login attempt may take
	MaxPending  int              // attempt cookies kept after a start; 0: DefaultMaxPending
	Now         func() time.Time // clock
	// CheckNow, optional, is the clock of the checks every request makes
	// (Load's lifetime and idle timeout, Touch's decision to write back):
	// one that may trail Now by a few milliseconds and costs less to read
	// (internal/clock). Default Now. Timestamps are always taken from Now.
	CheckNow   func() time.Time
	CacheSize  int    // verified cookie values remembered (decoded sessions, or store ids); 0: DefaultCacheSize, negative: no cache
	LogoutPath string // Path of the ID token cookies (cookie mode): where the logout handler is mounted; "": DefaultLogoutPath

	// LegacyName, optional, is the session cookie's former name: read when
	// Name is absent, moved to Name on the next write (legacy.go).
	LegacyName string
	// AttemptCrossSite writes the attempt cookies SameSite=None and Secure,
	// for a form_post callback (a cross-site POST); the session cookie keeps
	// SameSite=Lax.
	AttemptCrossSite bool

	// Store, when set, keeps the session data server-side in a gorilla
	// sessions.Store; the cookie then holds only the store's session id.
	// A Store that also implements RevocableStore is used through it: the
	// Manager seals the id in the cookie with KeyPairs, and never calls the
	// gorilla methods.
	Store sessions.Store
	// StoreTimeout bounds each call to Store. Default 3s.
	StoreTimeout time.Duration
	// StoreMaxInflight caps the Store calls that may be waiting at once, so
	// a frozen store cannot pile up goroutines. Default 64. Unused with a
	// RevocableStore, whose calls run on the request's goroutine.
	StoreMaxInflight int
}

// Manager loads and saves sessions: in an encrypted, signed cookie, or in a
// server-side store. It is safe for concurrent use.
// For wiring only: applications use package pipaauth.
type Manager struct {
	opt      Options
	backend  backend
	legacy   backend // cookies under Options.LegacyName; nil when none
	attempts *attemptJar
}

// DefaultMaxPending is Options.MaxPending when zero.
// For wiring only: applications use package pipaauth.
const DefaultMaxPending = 4

// backend is where the sealed session lives.
type backend interface {
	// load returns the session r carries: (nil, nil) when none, an error
	// wrapping ErrInvalid when the cookie is unusable, one wrapping
	// pipaauth.ErrSessionStore when the store failed.
	load(r *http.Request) (*Data, error)
	// save writes d with the cookie attributes of c (value and MaxAge
	// filled by the backend). renew asks for a new session id where the
	// backend has ids. On error nothing is written to w.
	save(w http.ResponseWriter, r *http.Request, d *Data, c *http.Cookie, renew bool) error
	// clear deletes the session, server-side too where there is one.
	clear(w http.ResponseWriter, r *http.Request) error
}

// NewManager checks opt and returns a Manager.
// For wiring only: applications use package pipaauth.
func NewManager(opt Options) (*Manager, error) {
	if err := CheckKeys(opt.KeyPairs); err != nil {
		return nil, err
	}
	if opt.Name == "" || opt.Lifetime <= 0 || opt.AttemptTTL <= 0 || opt.IdleTimeout < 0 || opt.Now == nil {
		return nil, fmt.Errorf("%w: session options incomplete", errs.ErrConfig)
	}
	if strings.HasPrefix(opt.Name, "__Host-") && !opt.Secure {
		return nil, fmt.Errorf("%w: a __Host- cookie must be Secure", errs.ErrConfig)
	}
	if opt.LogoutPath == "" {
		opt.LogoutPath = DefaultLogoutPath
	}
	if opt.CheckNow == nil {
		opt.CheckNow = opt.Now
	}
	if !strings.HasPrefix(opt.LogoutPath, "/") || strings.ContainsAny(opt.LogoutPath, ";\"\x00\r\n?#") {
		return nil, fmt.Errorf("%w: LogoutPath %q: use a plain absolute path such as /logout", errs.ErrConfig, opt.LogoutPath)
	}
	m := &Manager{opt: opt, attempts: newAttemptJar(opt)}
	if opt.Store != nil {
		if opt.StoreTimeout == 0 {
			opt.StoreTimeout = 3 * time.Second
		}
		if opt.StoreMaxInflight == 0 {
			opt.StoreMaxInflight = 64
		}
		if opt.StoreTimeout < 0 || opt.StoreMaxInflight < 0 {
			return nil, fmt.Errorf("%w: StoreTimeout and StoreMaxInflight must not be negative", errs.ErrConfig)
		}
		m.opt = opt
	}
	m.backend = newBackend(opt)
	m.legacy = legacyBackend(opt)
	return m, nil
}

// CheckKeys reports whether keys are complete securecookie pairs in which
// every pair both signs (hash key of at least 32 bytes) and encrypts (AES key
// of 16, 24 or 32 bytes).
// For wiring only: applications use package pipaauth.
func CheckKeys(keys [][]byte) error {
	switch {
	case len(keys) == 0:
		return fmt.Errorf("%w: SessionKeys is empty: give at least one pair of a 32- or 64-byte hash key and a 32-byte block key (for example from securecookie.GenerateRandomKey)", errs.ErrConfig)
	case len(keys)%2 != 0:
		return fmt.Errorf("%w: SessionKeys has an odd number of keys (%d): give complete pairs (hash key, block key[, hash key, block key ...])", errs.ErrConfig, len(keys))
	}
	for i := 0; i < len(keys); i += 2 {
		hashKey, blockKey := keys[i], keys[i+1]
		if len(hashKey) < 32 {
			return fmt.Errorf("%w: SessionKeys[%d] (hash key) is %d bytes: use at least 32 random bytes", errs.ErrConfig, i, len(hashKey))
		}
		if n := len(blockKey); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("%w: SessionKeys[%d] (block key) is %d bytes: use 16, 24 or 32 random bytes (32 selects AES-256)", errs.ErrConfig, i+1, n)
		}
		if subtle.ConstantTimeCompare(hashKey[:len(blockKey)], blockKey) == 1 {
			return fmt.Errorf("%w: SessionKeys[%d] and SessionKeys[%d] overlap: the hash and block keys of a pair must be independent random keys", errs.ErrConfig, i, i+1)
		}
	}
	return nil
}

func (m *Manager) now() time.Time { return m.opt.Now() }

// Load returns the live logged-in session r carries. It returns (nil, nil)
// when r has no session cookie, (nil, err) with err wrapping ErrInvalid when
// the cookie is unusable or its login expired (treat it as no session), and (nil, err) with
// err wrapping pipaauth.ErrSessionStore when the store failed. The *Data may be
// shared: Clone it before changing it.
// For wiring only: applications use package pipaauth.
func (m *Manager) Load(r *http.Request) (*Data, error) {
	d, err := m.backend.load(r)
	if d == nil && err == nil && m.legacy != nil {
		d, err = m.loadLegacy(r)
	}
	if d == nil || err != nil {
		return nil, err
	}
	return m.fresh(d)
}

// fresh returns d, or ErrInvalid when its login expired.
func (m *Manager) fresh(d *Data) (*Data, error) {
	if !d.LoggedIn() || !m.userFresh(d, m.opt.CheckNow()) {
		return nil, fmt.Errorf("%w: session expired", ErrInvalid)
	}
	return d, nil
}

func (m *Manager) userFresh(d *Data, now time.Time) bool {
	// A login stamped in the future (beyond a minute of clock skew) is as
	// suspect as an old one.
	if age := elapsed(now, d.LoginAt); age < -time.Minute || age >= m.opt.Lifetime {
		return false
	}
	if m.opt.IdleTimeout > 0 && elapsed(now, d.LastSeen) >= m.opt.IdleTimeout {
		return false
	}
	return true
}

// elapsed is now.Sub(t), for the wall-clock times a session holds. It
// runs on every guarded request, so it works in whole seconds and
// nanoseconds where the result cannot overflow (about 292 years either
// way), which Sub checks by adding the result back and comparing; beyond,
// it is Sub.
func elapsed(now, t time.Time) time.Duration {
	const limit = math.MaxInt64/int64(time.Second) - 1 // whole seconds a Duration holds, with room for the nanoseconds
	if s := now.Unix() - t.Unix(); s <= limit && s >= -limit {
		return time.Duration(s)*time.Second + time.Duration(now.Nanosecond()-t.Nanosecond())
	}
	return now.Sub(t)
}

// Touch slides the idle timeout of a logged-in d by writing it back with a
// new LastSeen, but only when an idle timeout is set and the last write is
// more than a minute (or a tenth of the timeout, if shorter) old, so that a
// busy session is not rewritten on every request.
// For wiring only: applications use package pipaauth.
func (m *Manager) Touch(w http.ResponseWriter, r *http.Request, d *Data) error {
	if m.opt.IdleTimeout <= 0 || !d.LoggedIn() {
		return nil
	}
	if elapsed(m.opt.CheckNow(), d.LastSeen) < min(time.Minute, m.opt.IdleTimeout/10) {
		return nil
	}
	d = d.Clone()
	d.LastSeen = m.now()
	return m.Save(w, r, d)
}

// Save writes d as the session, or clears it when d is empty. It must run
// before anything is written to w. On error nothing is written: the browser
// keeps the session it had. d must not be changed afterwards.
// For wiring only: applications use package pipaauth.
func (m *Manager) Save(w http.ResponseWriter, r *http.Request, d *Data) error {
	return m.save(w, r, d, false)
}

// Renew is Save for a login: where the backend has session ids, d gets a
// new id, so no id from before the login becomes a logged-in session (no
// session fixation), and the old id is deleted.
// For wiring only: applications use package pipaauth.
func (m *Manager) Renew(w http.ResponseWriter, r *http.Request, d *Data) error {
	return m.save(w, r, d, true)
}

func (m *Manager) save(w http.ResponseWriter, r *http.Request, d *Data, renew bool) error {
	if d.Empty() {
		return m.Clear(w, r)
	}
	if m.legacy == nil {
		return m.backend.save(w, r, d, cookieFor(m.opt, "", m.maxAge(d)), renew)
	}
	// A write-back of a session loaded under the legacy name: a gorilla
	// store's record cannot be looked up under the current name, so it
	// moves to a new id (and the old one is deleted); a RevocableStore's
	// record keeps its id (compare-and-set as usual), now sealed under the
	// current name.
	_, gorilla := m.backend.(*storeBackend)
	fromLegacy := false
	if r != nil && !renew && d.sid != "" {
		_, current := cookieValue(r.Header, m.opt.Name)
		_, old := cookieValue(r.Header, m.opt.LegacyName)
		fromLegacy = !current && old
	}
	moved := !renew && !gorilla
	if err := m.backend.save(w, r, d, cookieFor(m.opt, "", m.maxAge(d)), renew || gorilla && fromLegacy); err != nil {
		return err
	}
	m.dropLegacy(w, r, d, moved)
	return nil
}

// Clear deletes the session: the cookie, and the server-side data if any.
// For wiring only: applications use package pipaauth.
func (m *Manager) Clear(w http.ResponseWriter, r *http.Request) error {
	if err := m.backend.clear(w, r); err != nil {
		return err
	}
	return m.clearLegacy(w, r)
}

// maxAge is the cookie's lifetime in seconds, which is also the store
// record's: until the login expires, and ExpiredGrace more for a logout
// after the expiry (Load refuses the session all the same).
func (m *Manager) maxAge(d *Data) int {
	until := d.LoginAt.Add(m.opt.Lifetime + ExpiredGrace)
	return max(1, int(until.Sub(m.now())/time.Second))
}

func cookieFor(opt Options, value string, maxAge int) *http.Cookie {
	return sessions.NewCookie(opt.Name, value, &sessions.Options{
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   opt.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
