package session

import (
	"errors"
	"net/http"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// Options.LegacyName: the session cookie's former name. An upgrade that
// renames the cookie (pipaauth's default name became unique per client id)
// must not log anyone out: a request without a cookie under Name but with
// one under LegacyName that opens with this Manager's keys is loaded from
// it, and the next write of its session moves it to Name and deletes the
// old cookie. A cookie under LegacyName that does not open (another
// application's, sealed with other keys) is never touched: two
// applications on one host shared the old default name.

// newBackend returns the backend for opt.
func newBackend(opt Options) backend {
	if opt.Store != nil {
		if rs, ok := opt.Store.(RevocableStore); ok {
			// Context-aware loads, compare-and-set write-backs and
			// revocation, without a goroutine per call.
			return newRecordBackend(opt, rs)
		}
		return newStoreBackend(opt)
	}
	return newCookieBackend(opt)
}

// legacyBackend returns the backend that reads and deletes cookies under
// opt.LegacyName, nil when there is none.
func legacyBackend(opt Options) backend {
	if opt.LegacyName == "" || opt.LegacyName == opt.Name {
		return nil
	}
	opt.Name, opt.LegacyName = opt.LegacyName, ""
	return newBackend(opt)
}

// loadLegacy loads the session r carries under the legacy name when it
// carries none under the current one: (nil, nil) when there is nothing to
// read there.
func (m *Manager) loadLegacy(r *http.Request) (*Data, error) {
	if m.legacy == nil || r == nil {
		return nil, nil
	}
	if _, ok := cookieValue(r.Header, m.opt.Name); ok {
		return nil, nil
	}
	if _, ok := cookieValue(r.Header, m.opt.LegacyName); !ok {
		return nil, nil
	}
	return m.legacy.load(r)
}

// dropLegacy deletes, after d was written under the current name, the
// legacy cookie r carried when it holds a session of this Manager (it
// opens with its keys). moved reports that d's server-side record was
// kept (its id now sealed under the current name): the record stays, only
// the cookie goes. Failures are ignored: the new cookie is written and
// read first.
func (m *Manager) dropLegacy(w http.ResponseWriter, r *http.Request, d *Data, moved bool) {
	if m.legacy == nil || r == nil {
		return
	}
	if _, ok := cookieValue(r.Header, m.opt.LegacyName); !ok {
		return
	}
	old, err := m.legacy.load(r)
	if err != nil || old == nil {
		return // not ours (another application's), or expired: left alone
	}
	if moved && d != nil && old.sid != "" && old.sid == d.sid {
		w.Header().Add("Set-Cookie", cookieFor(Options{Name: m.opt.LegacyName, Secure: m.opt.Secure}, "", -1).String())
		return
	}
	_ = m.legacy.clear(w, r)
}

// clearLegacy ends, for Clear, the session r carries under the legacy name
// when it is this Manager's. A store that fails is an error, as for the
// current name: a logout must not leave the session alive server-side.
func (m *Manager) clearLegacy(w http.ResponseWriter, r *http.Request) error {
	if m.legacy == nil || r == nil {
		return nil
	}
	if _, ok := cookieValue(r.Header, m.opt.LegacyName); !ok {
		return nil
	}
	old, err := m.legacy.load(r)
	if errors.Is(err, errs.ErrSessionStore) {
		return err
	}
	if old == nil {
		return nil // not ours, or expired: left alone
	}
	return m.legacy.clear(w, r)
}
