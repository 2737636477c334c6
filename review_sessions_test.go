package pipaauth_test

// Regressions found by the security review of the day's merge (sessions,
// cookies, claims): each test fails on the code before its fix.

import (
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/memstore"
	"github.com/pipaauth/pipaauth/pipatest"
)

// A second login in the same PiPA session (same sid) while the store's
// clock has not moved 1 ms since the first: the sid probe of the first
// (Remember with a 1 ms TTL) is mistaken for a back-channel revocation.
func TestSIDCheckSecondLoginSameSID(t *testing.T) {
	var store *memstore.Store
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		store = memstore.New(memstore.Options{Now: cfg.Now})
		cfg.SessionStore = store
	}})
	b := h.app.newBrowser(t)
	b.login("/private")
	b.mustUser()
	// Log in again from the same browser: PiPA reuses its session (same sid).
	r := b.finish(b.startLogin(h.app.loginPath + "?return_to=/private"))
	t.Logf("second login: %d %q errors %v", r.status, r.location(), h.app.takeErrors())
	if r.status != 303 {
		t.Errorf("second login in the same PiPA session refused: %d", r.status)
	}
	b.mustUser()
}

// memstore has no cap on one user's live sessions (redisstore: 100).
func TestMemstoreCapsSessionsPerUser(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	app := newSessionsApp(t, provider, true)
	const n = 130
	for range n {
		app.login(t, provider, "alice", "Bot")
	}
	list, err := app.auth.UserSessions(t.Context(), provider.Subject(pipatest.DefaultClientID, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alice has %d live sessions in memstore after %d logins", len(list), n)
	if len(list) > 100 {
		t.Errorf("memstore keeps %d sessions of one user: no per-user cap (redisstore caps at %d)", len(list), 100)
	}
}

// The same with the real clock: two tabs of one browser finish their logins
// (same PiPA session, same sid) at the same moment.
func TestSIDCheckConcurrentTabs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func() sessions.Store
	}{
		{"memstore (looks the mark up)", func() sessions.Store { return memstore.New(memstore.Options{}) }},
		{"a store with Remember only", func() sessions.Store { return newMemRevocable() }},
	} {
		t.Run(tc.name, func(t *testing.T) { testSIDCheckConcurrentTabs(t, tc.store()) })
	}
}

func testSIDCheckConcurrentTabs(t *testing.T, store sessions.Store) {
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		cfg.SessionStore = store
	}})
	refused := 0
	const rounds = 20
	for i := range rounds {
		b := h.app.newBrowser(t)
		b.login("/private")
		a1 := b.startLogin(h.app.loginPath + "?return_to=/private")
		a2 := b.startLogin(h.app.loginPath + "?return_to=/")
		c1, c2 := b.authorize(a1), b.authorize(a2)
		var wg sync.WaitGroup
		var s1, s2 int
		wg.Add(2)
		go func() { defer wg.Done(); s1 = b.get(c1).status }()
		go func() { defer wg.Done(); s2 = b.get(c2).status }()
		wg.Wait()
		if s1 != 303 || s2 != 303 {
			refused++
			_, st := b.user()
			t.Logf("round %d: callbacks %d %d, errors %v; then /private: %d", i, s1, s2, h.app.takeErrors(), st)
		}
		h.app.takeErrors()
	}
	if refused > 0 {
		t.Errorf("%d of %d rounds: a login refused as revoked by a back-channel logout that never happened", refused, rounds)
	}
}

// EndUserSessions while a refresh of one of the sessions is in flight: the
// refresh's write-back must not revive it.
func TestEndUserSessionsDuringRefresh(t *testing.T) {
	store := memstore.New(memstore.Options{})
	ta := newTokenApp(t, true, func(c *pipaauth.Config) { c.SessionStore = store }, nil)
	ta.advance(2 * time.Hour) // the access token is due
	ta.provider.SetBehavior(pipatest.Behavior{TokenDelay: 300 * time.Millisecond})
	done := make(chan int)
	go func() { code, _ := ta.token(t); done <- code }()
	time.Sleep(100 * time.Millisecond)
	sub := ta.provider.Subject(pipatest.DefaultClientID, "alice")
	n, err := ta.auth.EndUserSessions(t.Context(), sub)
	t.Logf("EndUserSessions: %d %v", n, err)
	code := <-done
	t.Logf("refresh in flight answered %d", code)
	if code, body := ta.token(t); code == 200 {
		t.Errorf("after EndUserSessions, /token: %d %q: the session is alive", code, body)
	}
	if list, _ := ta.auth.UserSessions(t.Context(), sub); len(list) != 0 {
		t.Errorf("sessions revived: %+v", list)
	}
}
