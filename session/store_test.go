package session

import (
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// memStore is a gorilla sessions.Store in memory that can fail or freeze,
// shaped like the server-side stores (redistore and friends): the cookie
// carries a signed id, the values live in the store.
type memStore struct {
	mu     sync.Mutex
	codecs []securecookie.Codec
	data   map[string]map[any]any
	next   int
	fail   error         // returned by every call while set
	freeze chan struct{} // calls block until it is closed, while set
}

func newMemStore() *memStore {
	return &memStore{codecs: securecookie.CodecsFromPairs(securecookie.GenerateRandomKey(32)), data: map[string]map[any]any{}}
}

func (s *memStore) wait() error {
	s.mu.Lock()
	fail, freeze := s.fail, s.freeze
	s.mu.Unlock()
	if freeze != nil {
		<-freeze
	}
	return fail
}

func (s *memStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return s.New(r, name)
}

func (s *memStore) New(r *http.Request, name string) (*sessions.Session, error) {
	if err := s.wait(); err != nil {
		return nil, err
	}
	sess := sessions.NewSession(s, name)
	sess.Options = &sessions.Options{Path: "/store-default", MaxAge: 99999} // defaults the package must override
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	if err := securecookie.DecodeMulti(name, c.Value, &sess.ID, s.codecs...); err != nil {
		return sess, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.data[sess.ID]; ok {
		sess.Values = maps.Clone(v)
		sess.IsNew = false
	}
	return sess, nil
}

func (s *memStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if err := s.wait(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.Options.MaxAge < 0 {
		delete(s.data, sess.ID)
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	if sess.ID == "" {
		s.next++
		sess.ID = strings.Repeat("i", s.next%3+1) + string(rune('a'+s.next%26)) + time.Now().Format("150405.000000000")
	}
	s.data[sess.ID] = maps.Clone(sess.Values)
	v, err := securecookie.EncodeMulti(sess.Name(), sess.ID, s.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), v, sess.Options))
	return nil
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

func newStoreManager(t *testing.T, c *clock, st *memStore, mod func(*Options)) *Manager {
	return newManager(t, c, func(o *Options) {
		o.Store = st
		o.StoreTimeout = 200 * time.Millisecond
		if mod != nil {
			mod(o)
		}
	})
}

// saveWith saves d and returns a request carrying the resulting cookie.
func saveWith(t *testing.T, m *Manager, r *http.Request, d *Data, renew bool) (*http.Request, *httptest.ResponseRecorder) {
	t.Helper()
	rec := httptest.NewRecorder()
	save := m.Save
	if renew {
		save = m.Renew
	}
	if err := save(rec, r, d); err != nil {
		t.Fatalf("save: %v", err)
	}
	return withCookies(rec.Result().Cookies()), rec
}

func TestStoreRoundTrip(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	st := newMemStore()
	m := newStoreManager(t, c, st, nil)
	r, rec := saveWith(t, m, httptest.NewRequest("GET", "/", nil), sample(c.t), false)
	h := rec.Header().Get("Set-Cookie")
	for _, want := range []string{"__Host-test=", "Path=/;", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=46800"} { // 12 h Lifetime + 1 h ExpiredGrace
		if !strings.Contains(h, want) {
			t.Errorf("Set-Cookie %q lacks %q (the store's defaults must not leak)", h, want)
		}
	}
	if strings.Contains(h, "store-default") || strings.Contains(h, "99999") {
		t.Errorf("Set-Cookie %q carries the store's default options", h)
	}
	d, err := m.Load(r)
	if err != nil || !d.LoggedIn() || d.User.Email != "a@example.com" {
		t.Fatalf("Load = %+v, %v", d, err)
	}
	// A save of loaded data keeps its id: still one session in the store.
	saveWith(t, m, r, d.Clone(), false)
	if n := st.len(); n != 1 {
		t.Errorf("store holds %d sessions after re-saving, want 1", n)
	}
}

func TestStoreRenewAndClear(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	st := newMemStore()
	m := newStoreManager(t, c, st, nil)
	before, _ := saveWith(t, m, httptest.NewRequest("GET", "/", nil), sample(c.t), false)
	loggedIn := sample(c.t)
	loggedIn.User.ID = "user-2" // a second login in the same browser
	after, _ := saveWith(t, m, before, loggedIn, true)
	if _, err := m.Load(before); !errors.Is(err, ErrInvalid) {
		t.Errorf("the pre-login session id still loads after Renew: %v", err)
	}
	if n := st.len(); n != 1 {
		t.Errorf("store holds %d sessions after Renew, want 1", n)
	}
	if d, err := m.Load(after); err != nil || !d.LoggedIn() {
		t.Fatalf("renewed session: %+v, %v", d, err)
	}
	rec := httptest.NewRecorder()
	if err := m.Clear(rec, after); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(after); !errors.Is(err, ErrInvalid) {
		t.Errorf("a copy of the cookie still loads after Clear: %v", err)
	}
	if n := st.len(); n != 0 {
		t.Errorf("store holds %d sessions after Clear, want 0", n)
	}
	if h := rec.Header().Get("Set-Cookie"); !strings.Contains(h, "Max-Age=0") {
		t.Errorf("Clear wrote %q, want an expired cookie", h)
	}
}

func TestStoreInvalidCookie(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newStoreManager(t, c, newMemStore(), nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "__Host-test", Value: "tampered"})
	if d, err := m.Load(r); d != nil || !errors.Is(err, ErrInvalid) || errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("tampered id: Load = %+v, %v; want ErrInvalid, not a store error", d, err)
	}
	other := newMemStore() // same cookie name, other keys: an unknown id
	r2, _ := saveWith(t, newStoreManager(t, c, other, nil), httptest.NewRequest("GET", "/", nil), sample(c.t), false)
	if _, err := m.Load(r2); !errors.Is(err, ErrInvalid) {
		t.Errorf("foreign id: %v, want ErrInvalid", err)
	}
	r3 := httptest.NewRequest("GET", "/", nil)
	r3.AddCookie(&http.Cookie{Name: "__Host-test", Value: strings.Repeat("A", MaxCookieBytes+1)})
	if _, err := m.Load(r3); !errors.Is(err, ErrInvalid) || errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("a cookie too long for the codec: %v, want ErrInvalid, not a store error", err)
	}
	// gorilla's FilesystemStore reports an unknown id as a missing file.
	fsStore := sessions.NewFilesystemStore(t.TempDir(), securecookie.GenerateRandomKey(32))
	fm := newManager(t, c, func(o *Options) { o.Store = fsStore })
	r4, _ := saveWith(t, fm, httptest.NewRequest("GET", "/", nil), sample(c.t), false)
	if err := fm.Clear(httptest.NewRecorder(), r4); err != nil {
		t.Fatal(err)
	}
	if d, err := fm.Load(r4); d != nil || !errors.Is(err, ErrInvalid) || errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("a deleted id in a FilesystemStore: Load = %+v, %v; want ErrInvalid, not a store error", d, err)
	}
}

func TestStoreFailure(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	st := newMemStore()
	m := newStoreManager(t, c, st, nil)
	r, _ := saveWith(t, m, httptest.NewRequest("GET", "/", nil), sample(c.t), false)
	st.mu.Lock()
	st.fail = errors.New("connection refused")
	st.mu.Unlock()
	if _, err := m.Load(r); !errors.Is(err, errs.ErrSessionStore) {
		t.Errorf("Load with the store down: %v, want ErrSessionStore", err)
	}
	rec := httptest.NewRecorder()
	if err := m.Save(rec, r, sample(c.t)); !errors.Is(err, errs.ErrSessionStore) || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("Save with the store down: %v, Set-Cookie %q; want ErrSessionStore and nothing written", err, rec.Header().Get("Set-Cookie"))
	}
	st.mu.Lock()
	st.fail = nil
	st.mu.Unlock()
	if d, err := m.Load(r); err != nil || !d.LoggedIn() {
		t.Errorf("after the store came back: %+v, %v", d, err)
	}
}

func TestStoreFrozen(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	st := newMemStore()
	m := newStoreManager(t, c, st, func(o *Options) { o.StoreMaxInflight = 3 })
	r, _ := saveWith(t, m, httptest.NewRequest("GET", "/", nil), sample(c.t), false)
	freeze := make(chan struct{})
	st.mu.Lock()
	st.freeze = freeze
	st.mu.Unlock()
	goroutines := runtime.NumGoroutine()

	// 20 requests on a frozen store: each ends with ErrSessionStore (the
	// first three after the timeout, the rest at once), and at most three
	// goroutines stay stuck in the store.
	var wg sync.WaitGroup
	errc := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := m.Load(r)
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if !errors.Is(err, errs.ErrSessionStore) {
			t.Errorf("Load on a frozen store: %v, want ErrSessionStore", err)
		}
	}
	if extra := runtime.NumGoroutine() - goroutines; extra > 3 {
		t.Errorf("%d goroutines left waiting on the frozen store, want at most 3", extra)
	}
	close(freeze)
	st.mu.Lock()
	st.freeze = nil
	st.mu.Unlock()
	// The stuck calls return, free their slots, and the store works again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := m.Load(r)
		if err == nil && d.LoggedIn() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store never recovered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A write-back of a session loaded before a logout (a token refresh, an
// idle-timeout slide) must not bring the deleted session back.
func TestStoreWriteBackAfterLogout(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	st := newMemStore()
	m := newStoreManager(t, c, st, nil)
	r, _ := saveWith(t, m, httptest.NewRequest("GET", "/", nil), sample(c.t), false)
	d, err := m.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Clear(httptest.NewRecorder(), r); err != nil { // the logout, on any instance
		t.Fatal(err)
	}
	next := d.Clone()
	next.LastSeen = c.t.Add(time.Minute)
	rec := httptest.NewRecorder()
	if err := m.Save(rec, r, next); !errors.Is(err, ErrInvalid) {
		t.Errorf("write-back after logout: %v, want ErrInvalid", err)
	}
	if n := st.len(); n != 0 || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("the logged-out session came back: %d in the store, Set-Cookie %q", n, rec.Header().Get("Set-Cookie"))
	}
	if _, err := m.Load(r); !errors.Is(err, ErrInvalid) {
		t.Errorf("the old cookie loads again: %v", err)
	}
}

func TestStoreLargeTokens(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newStoreManager(t, c, newMemStore(), nil)
	d := sample(c.t)
	d.Tokens = &Tokens{AccessToken: strings.Repeat("a", 8000), RefreshToken: strings.Repeat("r", 3000)}
	r, _ := saveWith(t, m, httptest.NewRequest("GET", "/", nil), d, false)
	got, err := m.Load(r)
	if err != nil || got.Tokens == nil || len(got.Tokens.AccessToken) != 8000 {
		t.Fatalf("large tokens in a server-side session do not load back: %v", err)
	}
}

// A write-back of a session loaded before a login retired its id must not
// bring the retired id back.
func TestStoreRetiredIDNotLoggedInByWriteBack(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	st := newMemStore()
	m := newStoreManager(t, c, st, func(o *Options) { o.IdleTimeout = time.Hour })
	old := sample(c.t)
	r, _ := saveWith(t, m, httptest.NewRequest("GET", "/", nil), old, false)
	loaded, err := m.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	next := sample(c.t.Add(time.Minute))
	next.User.ID = "user-2"
	saveWith(t, m, r, next, true) // another tab's login: the old id is deleted
	c.t = c.t.Add(10 * time.Minute)
	rec := httptest.NewRecorder()
	if err := m.Touch(rec, r, loaded); !errors.Is(err, ErrInvalid) {
		t.Errorf("stale write-back onto the retired id: %v, want ErrInvalid", err)
	}
	if sc := rec.Header().Get("Set-Cookie"); sc != "" {
		t.Errorf("the stale write-back wrote Set-Cookie %q", sc)
	}
	if d, _ := m.Load(r); d.LoggedIn() {
		t.Errorf("the retired id is logged in again as %q", d.User.ID)
	}
}
