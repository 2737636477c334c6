package pipaauth_test

// Back-channel logout through the real session Manager and a
// RevocableStore (in memory here; redisstore's tests and the e2e fleet tests
// run it on Redis): the sessions the token names end, the others stay, and
// a refused token ends nothing.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// memRevocable is an in-memory pipaauth.RevocableStore; its gorilla methods
// must never be called.
type memRevocable struct {
	mu   sync.Mutex
	recs map[string]memRevocableRec
	seen map[string]time.Time // key -> expiry (real time, as a store's)
	next uint64
}

type memRevocableRec struct {
	data     []byte
	version  uint64
	sub, sid string
}

func newMemRevocable() *memRevocable {
	return &memRevocable{recs: map[string]memRevocableRec{}, seen: map[string]time.Time{}}
}

var _ pipaauth.RevocableStore = (*memRevocable)(nil)

func (s *memRevocable) LoadSession(_ context.Context, id string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if !ok {
		return nil, 0, nil
	}
	return append([]byte(nil), r.data...), r.version, nil
}

func (s *memRevocable) CreateSession(_ context.Context, id string, data []byte, sub, sid string, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[id]; ok {
		return false, nil
	}
	s.next++
	s.recs[id] = memRevocableRec{append([]byte(nil), data...), s.next, sub, sid}
	return true, nil
}

func (s *memRevocable) ReplaceSession(_ context.Context, id string, version uint64, data []byte, sub, sid string, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[id]; !ok || r.version != version {
		return false, nil
	}
	s.next++
	s.recs[id] = memRevocableRec{append([]byte(nil), data...), s.next, sub, sid}
	return true, nil
}

func (s *memRevocable) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, id)
	return nil
}

func (s *memRevocable) revoke(match func(memRevocableRec) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.recs {
		if match(r) {
			delete(s.recs, id)
			n++
		}
	}
	return n
}

func (s *memRevocable) RevokeSID(_ context.Context, sid string) (int, error) {
	return s.revoke(func(r memRevocableRec) bool { return r.sid == sid }), nil
}

func (s *memRevocable) RevokeSubject(_ context.Context, sub string) (int, error) {
	return s.revoke(func(r memRevocableRec) bool { return r.sub == sub }), nil
}

func (s *memRevocable) Forget(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, key)
	return nil
}

func (s *memRevocable) Remember(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if exp, ok := s.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	s.seen[key] = now.Add(ttl)
	return true, nil
}

func (s *memRevocable) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

var errGorillaCalled = errors.New("memRevocable: a gorilla method was called on a RevocableStore")

func (*memRevocable) Get(*http.Request, string) (*sessions.Session, error) {
	return nil, errGorillaCalled
}
func (*memRevocable) New(*http.Request, string) (*sessions.Session, error) {
	return nil, errGorillaCalled
}
func (*memRevocable) Save(*http.Request, http.ResponseWriter, *sessions.Session) error {
	return errGorillaCalled
}

// Two browsers of alice and one of bob; back-channel logout by alice's sub
// ends both of hers and only them; refused tokens end nothing.
func TestBackChannelLogoutRevocableStore(t *testing.T) {
	store := newMemRevocable()
	b := newBCL(t, false, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) { cfg.SessionStore = store }})
	app := b.h.app
	alice1, alice2 := app.newBrowser(t), app.newBrowser(t)
	alice1.login("/private")
	alice2.login("/private")
	b.h.provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true})
	bob := app.newBrowser(t)
	bob.login("/private")
	for _, br := range []*browser{alice1, alice2, bob} {
		br.mustUser()
	}
	if n := store.len(); n != 3 {
		t.Fatalf("the store holds %d sessions, want 3", n)
	}

	aliceSub := b.h.subject("alice")
	refused := []struct {
		name string
		opts pipatest.LogoutTokenOptions
	}{
		{"wrong key", pipatest.LogoutTokenOptions{User: "alice", WrongKey: true}},
		{"other audience", pipatest.LogoutTokenOptions{User: "alice", Audience: []string{"someone-else"}}},
		{"nonce", pipatest.LogoutTokenOptions{User: "alice", Nonce: "n"}},
		{"no events", pipatest.LogoutTokenOptions{User: "alice", OmitEvents: true}},
		{"old", pipatest.LogoutTokenOptions{User: "alice", IssuedAt: time.Now().Add(-time.Hour)}},
	}
	for _, tt := range refused {
		wantRefusal(t, b.send(t, b.token(tt.opts)), http.StatusBadRequest, "invalid_request")
		if n := store.len(); n != 3 {
			t.Fatalf("%s: a refused token ended sessions (%d left, want 3)", tt.name, n)
		}
	}
	for _, br := range []*browser{alice1, alice2, bob} {
		br.mustUser()
	}

	tok := b.token(pipatest.LogoutTokenOptions{User: "alice"})
	if r := b.send(t, tok); r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("back-channel logout by sub %s: %d (Cache-Control %q) %s; want 200, no-store", aliceSub, r.status, r.header.Get("Cache-Control"), r.body)
	}
	alice1.mustBeLoggedOut()
	alice2.mustBeLoggedOut()
	if u := bob.mustUser(); u.ID != b.h.subject("bob") {
		t.Errorf("bob's browser holds %+v", u)
	}
	// The same token again is a replay: refused.
	wantRefusal(t, b.send(t, tok), http.StatusBadRequest, "invalid_request")
}

// The session records the ID token's sid, so that a logout token naming it
// ends that login only, on the store's sid index; another login of the same
// user (another provider session) stays.
func TestBackChannelLogoutBySID(t *testing.T) {
	store := newMemRevocable()
	b := newBCL(t, false, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) { cfg.SessionStore = store }})
	app := b.h.app
	loginWithSID := func(sid string) *browser {
		br := app.newBrowser(t)
		auth := br.startLogin("/private")
		b.h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["sid"] = sid }})
		defer b.h.setBehavior(pipatest.Behavior{})
		if r := br.finish(auth); r.status != http.StatusSeeOther {
			t.Fatalf("login with sid %q: %d %s", sid, r.status, r.body)
		}
		br.mustUser()
		return br
	}
	one, two := loginWithSID("op-session-1"), loginWithSID("op-session-2")
	store.mu.Lock()
	sids := map[string]int{}
	for _, r := range store.recs {
		sids[r.sid]++
	}
	store.mu.Unlock()
	if sids["op-session-1"] != 1 || sids["op-session-2"] != 1 {
		t.Fatalf("the store recorded sids %v, want op-session-1 and op-session-2 once each", sids)
	}

	wantRefusal(t, b.send(t, b.token(pipatest.LogoutTokenOptions{OmitSubject: true, SID: "op-session-1", Nonce: "n"})), http.StatusBadRequest, "invalid_request")
	one.mustUser()
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{OmitSubject: true, SID: "op-session-1"})); r.status != http.StatusOK {
		t.Fatalf("back-channel logout by sid: %d %s", r.status, r.body)
	}
	one.mustBeLoggedOut()
	two.mustUser()
}

// An ID token whose sid is not a short string is refused: the session could
// not record it, and a sid-less session would escape back-channel logout.
func TestIDTokenSIDRefused(t *testing.T) {
	h := newHarness(t, setup{plainHTTP: true})
	for name, sid := range map[string]any{
		"too long":     strings.Repeat("s", 2049),
		"not a string": 42,
	} {
		t.Run(name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			auth := b.startLogin("/private")
			h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["sid"] = sid }})
			defer h.setBehavior(pipatest.Behavior{})
			r := b.finish(auth)
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
			b.mustBeLoggedOut()
		})
	}
}

// With LazyDiscovery, a logout token that arrives before PiPA's discovery
// document does is answered 503 (no keys to verify it with yet; the provider
// retries) and ends nothing; once the document is applied, the same kind of
// token is verified and ends the sessions, and the provider's announcement
// is logged then.
func TestBackChannelLogoutBeforeLazyDiscovery(t *testing.T) {
	t.Parallel()
	p := newFlakyPiPA(t)
	p.down.Store(true)
	store := newMemRevocable()
	app := newLazyApp(t, p, nil, true, func(cfg *pipaauth.Config) { cfg.SessionStore = store })
	mux := http.NewServeMux()
	mux.Handle("/backchannel-logout", app.auth.BackChannelLogoutHandler())
	bcl := httptest.NewTLSServer(mux)
	t.Cleanup(bcl.Close)
	send := func(tok string) *http.Response {
		t.Helper()
		resp, err := bcl.Client().PostForm(bcl.URL+"/backchannel-logout", url.Values{"logout_token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// The token is signed with the provider's key, as it would be.
	tok := p.provider.LogoutToken(clientID, pipatest.LogoutTokenOptions{User: "alice", Issuer: p.front.URL})
	if resp := send(tok); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a logout token before discovery: %d, want 503", resp.StatusCode)
	}
	if strings.Contains(app.logs.String(), "backchannel_logout_supported") {
		t.Error("the provider's back-channel announcement was logged before its document arrived")
	}

	p.down.Store(false)
	eventually(t, "discovery did not succeed after PiPA came back", func() bool { return p.served.Load() >= 1 })
	select {
	case <-pipaauth.BackgroundDone(app.auth):
	case <-time.After(5 * time.Second):
		t.Fatal("the background retries go on after discovery succeeded")
	}
	b := newLazyBrowser(t, p)
	b.login(app, p)
	if n := store.len(); n != 1 {
		t.Fatalf("the store holds %d sessions after the login, want 1", n)
	}
	if !strings.Contains(app.logs.String(), "backchannel_logout_supported=true") {
		t.Errorf("the applied document's back-channel announcement was not logged:\n%s", app.logs.String())
	}
	if resp := send(p.provider.LogoutToken(clientID, pipatest.LogoutTokenOptions{User: "alice", Issuer: p.front.URL})); resp.StatusCode != http.StatusOK {
		t.Fatalf("a logout token after discovery: %d, want 200", resp.StatusCode)
	}
	if n := store.len(); n != 0 {
		t.Errorf("the store holds %d sessions after the back-channel logout, want 0", n)
	}
}
