package session

import "fmt"

// ServerSide reports whether sessions live in a server-side store (the
// cookie then holds only an id).
// For wiring only: applications use package pipaauth.
func (m *Manager) ServerSide() bool { return m.opt.Store != nil }

// CookieBytes returns the length of the Set-Cookie header of the session
// cookie that would carry d in cookie mode (compare it with
// MaxCookieBytes): its identity, claims and binding handle; the ID token
// and tokens go to side cookies of their own. It writes nothing, and fails
// in store mode or when d cannot be sealed.
// For wiring only: applications use package pipaauth.
func (m *Manager) CookieBytes(d *Data) (int, error) {
	b, ok := m.backend.(*cookieBackend)
	if !ok {
		return 0, fmt.Errorf("session: sessions are server-side, not in a cookie")
	}
	id := d.identity()
	if id.bind == (handle{}) {
		id.bind = handle{1} // a login's cookie carries a handle: count its bytes
	}
	value, err := b.writer.Encode(b.name, id)
	if err != nil {
		return 0, fmt.Errorf("session: sealing the session: %w", err)
	}
	c := cookieFor(m.opt, value, m.maxAge(d))
	return len(c.String()), nil
}
