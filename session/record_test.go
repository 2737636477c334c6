package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// memRecords is an in-memory RevocableStore, and a gorilla Store whose gorilla
// methods must never be called.
type memRecords struct {
	mu      sync.Mutex
	recs    map[string]memRec
	seen    map[string]time.Time
	next    uint64
	calls   map[string]int
	fail    error         // when set, every call returns it
	block   chan struct{} // when set, LoadSession waits on it or on ctx
	lastCtx context.Context
}

type memRec struct {
	data     []byte
	version  uint64
	sub, sid string
	expires  time.Time
}

func newMemRecords() *memRecords {
	return &memRecords{recs: map[string]memRec{}, seen: map[string]time.Time{}, calls: map[string]int{}}
}

func (s *memRecords) begin(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	return s.fail
}

func (s *memRecords) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *memRecords) record(id string) (memRec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	return r, ok
}

func (s *memRecords) LoadSession(ctx context.Context, id string) ([]byte, uint64, error) {
	if err := s.begin("load"); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	s.lastCtx = ctx
	block := s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if !ok {
		return nil, 0, nil
	}
	return append([]byte(nil), r.data...), r.version, nil
}

func (s *memRecords) CreateSession(_ context.Context, id string, data []byte, sub, sid string, expires time.Time) (bool, error) {
	if err := s.begin("create"); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[id]; ok {
		return false, nil
	}
	s.next++
	s.recs[id] = memRec{append([]byte(nil), data...), s.next, sub, sid, expires}
	return true, nil
}

func (s *memRecords) ReplaceSession(_ context.Context, id string, version uint64, data []byte, sub, sid string, expires time.Time) (bool, error) {
	if err := s.begin("replace"); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[id]; !ok || r.version != version {
		return false, nil
	}
	s.next++
	s.recs[id] = memRec{append([]byte(nil), data...), s.next, sub, sid, expires}
	return true, nil
}

func (s *memRecords) DeleteSession(_ context.Context, id string) error {
	if err := s.begin("delete"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, id)
	return nil
}

func (s *memRecords) revoke(match func(memRec) bool) (int, error) {
	if err := s.begin("revoke"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.recs {
		if match(r) {
			delete(s.recs, id)
			n++
		}
	}
	return n, nil
}

func (s *memRecords) RevokeSID(_ context.Context, sid string) (int, error) {
	return s.revoke(func(r memRec) bool { return r.sid == sid })
}

func (s *memRecords) RevokeSubject(_ context.Context, sub string) (int, error) {
	return s.revoke(func(r memRec) bool { return r.sub == sub })
}

func (s *memRecords) Forget(_ context.Context, key string) error {
	if err := s.begin("forget"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, key)
	return nil
}

func (s *memRecords) Remember(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if err := s.begin("remember"); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[key]; ok {
		return false, nil
	}
	s.seen[key] = time.Now().Add(ttl)
	return true, nil
}

var errGorillaCalled = errors.New("memRecords: a gorilla method was called on a RevocableStore")

func (*memRecords) Get(*http.Request, string) (*sessions.Session, error) {
	return nil, errGorillaCalled
}
func (*memRecords) New(*http.Request, string) (*sessions.Session, error) {
	return nil, errGorillaCalled
}
func (*memRecords) Save(*http.Request, http.ResponseWriter, *sessions.Session) error {
	return errGorillaCalled
}

func newRecordManager(t *testing.T, c *clock, s *memRecords, kp [][]byte, mod func(*Options)) *Manager {
	t.Helper()
	return newManager(t, c, func(o *Options) {
		o.Store = s
		o.KeyPairs = kp
		o.StoreTimeout = time.Second
		if mod != nil {
			mod(o)
		}
	})
}

// idOf opens the cookie the way the Manager does and returns the id in it.
func idOf(t *testing.T, kp [][]byte, r *http.Request) string {
	t.Helper()
	c, err := r.Cookie("__Host-test")
	if err != nil {
		t.Fatal(err)
	}
	sc := securecookie.New(kp[0], kp[1])
	sc.SetSerializer(securecookie.NopEncoder{})
	var raw []byte
	if err := sc.Decode("__Host-test", c.Value, &raw); err != nil {
		t.Fatalf("the cookie does not open with the session keys: %v", err)
	}
	return string(raw)
}

func loggedIn(now time.Time) *Data {
	return &Data{User: User{ID: "sub-1", Email: "a@example.com"}, LoginAt: now, LastSeen: now, SID: "op-sid-1"}
}

func TestRecordDetected(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newRecordManager(t, c, newMemRecords(), keys(1), nil)
	if _, ok := m.backend.(*recordBackend); !ok || !m.CanRevoke() {
		t.Errorf("a RevocableStore got backend %T, CanRevoke %v", m.backend, m.CanRevoke())
	}
	plain := newManager(t, c, func(o *Options) { o.Store = sessions.NewCookieStore(keys(1)...) })
	if _, ok := plain.backend.(*storeBackend); !ok || plain.CanRevoke() {
		t.Errorf("a plain gorilla store got backend %T, CanRevoke %v", plain.backend, plain.CanRevoke())
	}
	cookie := newManager(t, c, nil)
	for name, err := range map[string]error{
		"RevokeSID":     second(cookie.RevokeSID(t.Context(), "x")),
		"RevokeSubject": second(cookie.RevokeSubject(t.Context(), "x")),
		"Remember":      second(cookie.Remember(t.Context(), "x", time.Minute)),
	} {
		if !errors.Is(err, errs.ErrConfig) {
			t.Errorf("%s in cookie mode: %v, want ErrConfig", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestRecordRoundTrip(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, nil)
	d := loggedIn(c.t)
	r := roundTrip(t, m, d)

	id := idOf(t, kp, r)
	rec, ok := s.record(id)
	if !ok {
		t.Fatalf("no record under the cookie's id %q", id)
	}
	if len(id) < 26 {
		t.Errorf("id %q is shorter than 128 random bits in base32", id)
	}
	if rec.sub != "sub-1" || rec.sid != "op-sid-1" {
		t.Errorf("record metadata sub %q sid %q, want sub-1, op-sid-1", rec.sub, rec.sid)
	}
	if want := c.t.Add(12*time.Hour + ExpiredGrace); rec.expires.Before(want.Add(-2*time.Second)) || rec.expires.After(want) {
		t.Errorf("record expires %v, want about %v", rec.expires, want)
	}
	got, err := m.Load(r)
	if err != nil || got.User != d.User || !got.LoginAt.Equal(d.LoginAt) {
		t.Fatalf("Load = %+v, %v; want the saved user", got, err)
	}
	again, err := m.Load(r)
	if err != nil || again != got {
		t.Errorf("a second Load of the same version decoded again (%p, %p, %v)", again, got, err)
	}
	if s.count("load") != 2 {
		t.Errorf("%d store loads for 2 Loads, want 2: every Load asks the store", s.count("load"))
	}

	// Another instance (its own cache) reads the same session.
	other := newRecordManager(t, c, s, kp, nil)
	if got, err := other.Load(r); err != nil || got.User.ID != "sub-1" {
		t.Errorf("another instance: %+v, %v", got, err)
	}
	// A write by that instance is seen here: the version changed.
	next := got.Clone()
	next.User.Email = "b@example.com"
	if err := other.Save(httptest.NewRecorder(), r, next); err != nil {
		t.Fatalf("write-back: %v", err)
	}
	if got, err := m.Load(r); err != nil || got.User.Email != "b@example.com" {
		t.Errorf("after another instance's write-back: %+v, %v; want the new email", got, err)
	}

	// A store that gives a version number a second time with other
	// contents (writes lost in a failover) is not served the old decoding.
	lost := loggedIn(c.t)
	lost.User.Email = "c@example.com"
	rawLost, _ := lost.marshalBinary()
	s.mu.Lock()
	stored := s.recs[id]
	stored.data = rawLost
	s.recs[id] = stored
	s.mu.Unlock()
	if got, err := m.Load(r); err != nil || got.User.Email != "c@example.com" {
		t.Errorf("same version, other bytes: %+v, %v; want the stored bytes decoded", got, err)
	}
}

func TestRecordRefusedCookies(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, nil)
	r := roundTrip(t, m, loggedIn(c.t))
	value := r.Header.Get("Cookie")
	foreign := newRecordManager(t, c, s, keys(1), nil)
	rf := roundTrip(t, foreign, loggedIn(c.t))

	tests := []struct {
		name   string
		cookie string
		store  bool // whether the store may be asked
	}{
		{"tampered", value[:len(value)-3] + "AAA", false},
		{"sealed with other keys", rf.Header.Get("Cookie"), false},
		{"not a securecookie", "__Host-test=" + idOf(t, kp, r), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.count("load")
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Cookie", tt.cookie)
			d, err := m.Load(req)
			if d != nil || !errors.Is(err, ErrInvalid) {
				t.Errorf("Load = %v, %v; want ErrInvalid", d, err)
			}
			if !tt.store && s.count("load") != before {
				t.Error("the store was asked about a cookie that does not open")
			}
		})
	}

	// A sealed id the store does not know (deleted, expired).
	other := roundTrip(t, m, loggedIn(c.t))
	if err := s.DeleteSession(t.Context(), idOf(t, kp, other)); err != nil {
		t.Fatal(err)
	}
	if d, err := m.Load(other); d != nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("Load of a deleted id = %v, %v; want ErrInvalid", d, err)
	}
}

// A write-back (refresh, idle slide) that read the session before a logout
// must not bring it back.
func TestRecordWriteBackAfterDelete(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, func(o *Options) { o.IdleTimeout = time.Hour })
	r := roundTrip(t, m, loggedIn(c.t))
	id := idOf(t, kp, r)
	d, err := m.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	// Logout on another instance.
	other := newRecordManager(t, c, s, kp, nil)
	if err := other.Clear(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(10 * time.Minute)
	rec := httptest.NewRecorder()
	err = m.Touch(rec, r, d)
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Touch after a logout = %v, want ErrInvalid", err)
	}
	if _, ok := s.record(id); ok {
		t.Error("the write-back brought the logged-out session back")
	}
	if h := rec.Header().Get("Set-Cookie"); h != "" {
		t.Errorf("a refused write-back wrote %q", h)
	}

	// Two write-backs of one login from the same version (a shared token
	// refresh and an idle slide): the second merges, keeping the later
	// tokens and the later LastSeen, whichever order they land in.
	r = roundTrip(t, m, loggedIn(c.t))
	d1, _ := m.Load(r)
	refreshed := d1.Clone()
	refreshed.Tokens = &Tokens{AccessToken: "new", RefreshToken: "rotated", Expiry: c.t.Add(time.Hour)}
	refreshed.LastSeen = c.t.Add(time.Second)
	if err := m.Save(httptest.NewRecorder(), r, refreshed); err != nil {
		t.Fatal(err)
	}
	slide := d1.Clone()
	slide.LastSeen = c.t.Add(2 * time.Second)
	if err := m.Save(httptest.NewRecorder(), r, slide); err != nil {
		t.Errorf("a slide racing a refresh of the same login = %v, want it merged", err)
	}
	got, _ := m.Load(r)
	if got.Tokens == nil || got.Tokens.RefreshToken != "rotated" || !got.LastSeen.Equal(c.t.Add(2*time.Second)) {
		t.Errorf("after the merge: tokens %+v, LastSeen %v; want the rotated tokens and the later LastSeen", got.Tokens, got.LastSeen)
	}

	// A write-back of another login (the id was logged in anew meanwhile)
	// is refused, and changes nothing.
	stale := d1.Clone()
	stale.LoginAt = c.t.Add(-time.Hour)
	stale.User.Email = "stale@example.com"
	if err := m.Save(httptest.NewRecorder(), r, stale); !errors.Is(err, ErrInvalid) {
		t.Errorf("a write-back of another login = %v, want ErrInvalid", err)
	}
	if got, _ := m.Load(r); got.User.Email != "a@example.com" {
		t.Errorf("email %q after a refused write-back, want the stored one", got.User.Email)
	}
}

// A login (Renew) gets a new id, and the id the browser had before goes:
// no id from before a login becomes a logged-in session (no fixation).
func TestRecordRenew(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, nil)
	renew := func(t *testing.T, r *http.Request, d *Data) *http.Request {
		t.Helper()
		rec := httptest.NewRecorder()
		if err := m.Renew(rec, r, d); err != nil {
			t.Fatal(err)
		}
		return withCookies(rec.Result().Cookies())
	}

	t.Run("over an earlier session", func(t *testing.T) {
		before := roundTrip(t, m, loggedIn(c.t))
		oldID := idOf(t, kp, before)
		next := loggedIn(c.t)
		next.User.ID = "sub-2" // another account in the same browser
		after := renew(t, before, next)
		newID := idOf(t, kp, after)
		if newID == oldID {
			t.Fatal("Renew kept the id")
		}
		if _, ok := s.record(oldID); ok {
			t.Error("the pre-login id still exists")
		}
		if rec, ok := s.record(newID); !ok || rec.sub != "sub-2" {
			t.Errorf("new record %+v, %v; want one indexed under sub-2", rec, ok)
		}
		if _, err := m.Load(before); !errors.Is(err, ErrInvalid) {
			t.Errorf("the pre-login cookie still loads: %v", err)
		}
	})
	t.Run("a loaded session renewed", func(t *testing.T) {
		r := roundTrip(t, m, loggedIn(c.t))
		oldID := idOf(t, kp, r)
		d, err := m.Load(r)
		if err != nil {
			t.Fatal(err)
		}
		after := renew(t, r, d.Clone())
		if idOf(t, kp, after) == oldID {
			t.Fatal("Renew of loaded data kept its id")
		}
		if _, ok := s.record(oldID); ok {
			t.Error("the loaded id still exists after Renew")
		}
	})
	t.Run("no earlier session", func(t *testing.T) {
		deletes := s.count("delete")
		after := renew(t, httptest.NewRequest("GET", "/", nil), loggedIn(c.t))
		if _, ok := s.record(idOf(t, kp, after)); !ok {
			t.Error("no record for the login")
		}
		if s.count("delete") != deletes {
			t.Error("Renew without a session cookie deleted something")
		}
	})
}

func TestRecordStoreFailures(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, nil)
	r := roundTrip(t, m, loggedIn(c.t))
	s.fail = errors.New("connection refused")

	if d, err := m.Load(r); d != nil || !errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("Load = %v, %v; want ErrSessionStore", d, err)
	}
	rec := httptest.NewRecorder()
	if err := m.Clear(rec, r); !errors.Is(err, errs.ErrSessionStore) || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("Clear = %v with Set-Cookie %q; want ErrSessionStore and the cookie kept", err, rec.Header().Get("Set-Cookie"))
	}
	rec = httptest.NewRecorder()
	if err := m.Save(rec, nil, loggedIn(c.t)); !errors.Is(err, errs.ErrSessionStore) || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("Save = %v with Set-Cookie %q; want ErrSessionStore, nothing written", err, rec.Header().Get("Set-Cookie"))
	}
	if _, err := m.RevokeSID(t.Context(), "x"); !errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("RevokeSID = %v, want ErrSessionStore", err)
	}
	if _, err := m.Remember(t.Context(), "x", time.Minute); !errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("Remember = %v, want ErrSessionStore", err)
	}
}

// A store that does not answer is given up on at StoreTimeout, through the
// context: no goroutine of the Manager's own.
func TestRecordTimeout(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, func(o *Options) { o.StoreTimeout = 100 * time.Millisecond })
	r := roundTrip(t, m, loggedIn(c.t))
	s.block = make(chan struct{})
	defer close(s.block)
	begin := time.Now()
	d, err := m.Load(r)
	took := time.Since(begin)
	if d != nil || !errors.Is(err, errs.ErrSessionStore) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Load of a frozen store = %v, %v; want ErrSessionStore wrapping DeadlineExceeded", d, err)
	}
	if took > 2*time.Second {
		t.Errorf("Load took %s with a 100ms StoreTimeout", took)
	}
	dl, ok := s.lastCtx.Deadline()
	if !ok || dl.Sub(begin) > 150*time.Millisecond {
		t.Errorf("the store got deadline %v (%v), want StoreTimeout from the call", dl, ok)
	}
	if s.lastCtx.Err() == nil {
		t.Error("the context handed to the store is still live after the call")
	}
}

func TestLazyDeadline(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	parent, stop := context.WithCancel(context.Background())
	defer stop()
	c := &lazyDeadline{parent: parent, deadline: time.Now().Add(time.Hour), canceled: canceled}
	if c.ctx != nil {
		t.Fatal("armed before use")
	}
	child, cancelChild := context.WithCancel(c) // derives through AfterFunc
	defer cancelChild()
	stop()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Fatal("a child of a lazyDeadline missed its parent's cancellation")
	}
	unused := &lazyDeadline{parent: context.Background(), deadline: time.Now().Add(time.Hour), canceled: canceled}
	unused.release()
	if unused.cancel != nil || unused.Err() == nil {
		t.Error("release of an unused lazyDeadline started a timer or left it live")
	}
}

func TestRevokeAndRemember(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := newMemRecords(), keys(1)
	m := newRecordManager(t, c, s, kp, nil)
	mk := func(sub, sid string) *http.Request {
		d := loggedIn(c.t)
		d.User.ID, d.SID = sub, sid
		return roundTrip(t, m, d)
	}
	a1, a2, b1 := mk("alice", "op-1"), mk("alice", "op-2"), mk("bob", "op-3")
	for _, r := range []*http.Request{a1, a2, b1} {
		if _, err := m.Load(r); err != nil {
			t.Fatal(err) // cached, so revocation must beat the cache
		}
	}
	if n, err := m.RevokeSID(t.Context(), "op-1"); n != 1 || err != nil {
		t.Errorf("RevokeSID = %d, %v; want 1", n, err)
	}
	if _, err := m.Load(a1); !errors.Is(err, ErrInvalid) {
		t.Errorf("the revoked session loads: %v", err)
	}
	if _, err := m.Load(a2); err != nil {
		t.Errorf("another session of the same user was revoked by sid: %v", err)
	}
	if n, err := m.RevokeSubject(t.Context(), "alice"); n != 1 || err != nil {
		t.Errorf("RevokeSubject = %d, %v; want 1", n, err)
	}
	if _, err := m.Load(a2); !errors.Is(err, ErrInvalid) {
		t.Errorf("the user's session survived RevokeSubject: %v", err)
	}
	if _, err := m.Load(b1); err != nil {
		t.Errorf("another user's session was revoked: %v", err)
	}
	for _, fn := range []func() (int, error){
		func() (int, error) { return m.RevokeSID(t.Context(), "") },
		func() (int, error) { return m.RevokeSubject(t.Context(), "") },
	} {
		if _, err := fn(); !errors.Is(err, errs.ErrConfig) {
			t.Errorf("revoking by an empty value: %v, want ErrConfig", err)
		}
	}
	if first, err := m.Remember(t.Context(), "jti-1", time.Minute); !first || err != nil {
		t.Errorf("first Remember = %v, %v", first, err)
	}
	if first, err := m.Remember(t.Context(), "jti-1", time.Minute); first || err != nil {
		t.Errorf("second Remember = %v, %v; want false", first, err)
	}
	if _, err := m.Remember(t.Context(), "jti-2", 0); !errors.Is(err, errs.ErrConfig) {
		t.Errorf("Remember with ttl 0 = %v, want ErrConfig", err)
	}
}

// staleRecords serves, for its next n loads of an id, the record as it was
// when it was armed: a local cache whose invalidation is still on its way.
type staleRecords struct {
	*memRecords
	mu    sync.Mutex
	stale map[string]memRec
	n     int
}

func (s *staleRecords) arm(id string, n int) {
	rec, _ := s.record(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale, s.n = map[string]memRec{id: rec}, n
}

func (s *staleRecords) LoadSession(ctx context.Context, id string) ([]byte, uint64, error) {
	s.mu.Lock()
	if rec, ok := s.stale[id]; ok && s.n > 0 {
		s.n--
		s.mu.Unlock()
		return append([]byte(nil), rec.data...), rec.version, nil
	}
	s.mu.Unlock()
	return s.memRecords.LoadSession(ctx, id)
}

// A write-back that lost its compare-and-set to another write of the same
// login, on a store whose cache still serves the version it lost on for a
// few reads, waits for the current version and merges onto it, instead of
// failing (which would end the user's request as if the session were gone).
func TestRecordWriteBackStaleCache(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s, kp := &staleRecords{memRecords: newMemRecords()}, keys(1)
	m := newManager(t, c, func(o *Options) { o.Store = s; o.KeyPairs = kp; o.StoreTimeout = time.Second })
	r := roundTrip(t, m, loggedIn(c.t))
	d, err := m.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	s.arm(idOf(t, kp, r), 5) // the cache keeps serving this version 5 more times
	other := d.Clone()
	other.LastSeen = c.t.Add(time.Second)
	if err := m.Save(httptest.NewRecorder(), r, other); err != nil {
		t.Fatal(err) // the other write wins
	}
	mine := d.Clone()
	mine.Tokens = &Tokens{AccessToken: "new", RefreshToken: "rotated", Expiry: c.t.Add(time.Hour)}
	if err := m.Save(httptest.NewRecorder(), r, mine); err != nil {
		t.Fatalf("a write-back racing another of the same login, stale cache: %v, want it merged", err)
	}
	s.mu.Lock()
	s.n = 0
	s.mu.Unlock()
	got, err := m.Load(r)
	if err != nil || got.Tokens == nil || got.Tokens.RefreshToken != "rotated" || !got.LastSeen.Equal(c.t.Add(time.Second)) {
		t.Errorf("after the merge: %+v, %v; want the rotated tokens and the other write's LastSeen", got, err)
	}

	// A cache that never catches up is a store failure, not a lost session.
	d, err = m.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	s.arm(idOf(t, kp, r), 1<<30)
	if err := m.Save(httptest.NewRecorder(), r, other); err != nil {
		t.Fatal(err) // another write wins again
	}
	if err := m.Save(httptest.NewRecorder(), r, d.Clone()); !errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("a store that keeps serving the refused version: %v, want ErrSessionStore", err)
	}
}
