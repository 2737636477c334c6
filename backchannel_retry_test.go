package pipaauth_test

// A back-channel logout whose revocation fails must leave the provider's
// retry with the same token acceptable, and a revocation must not depend on
// the provider's connection staying open (Back-Channel Logout 1.0 sections
// 2.7 and 2.8).

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// faultyRevocable is a memRevocable whose revocations and Forget can be
// held or slowed, and which honours its contexts as a network store does.
type faultyRevocable struct {
	*memRevocable
	mu      sync.Mutex
	hold    chan struct{} // non-nil: RevokeSID/RevokeSubject wait for it (or their ctx)
	entered chan struct{} // signalled when a revocation starts waiting
}

func (s *faultyRevocable) wait(ctx context.Context) error {
	s.mu.Lock()
	hold, entered := s.hold, s.entered
	s.mu.Unlock()
	if hold == nil {
		return ctx.Err()
	}
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	select {
	case <-hold:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *faultyRevocable) RevokeSID(ctx context.Context, sid string) (int, error) {
	if err := s.wait(ctx); err != nil {
		return 0, err
	}
	return s.memRevocable.RevokeSID(ctx, sid)
}

func (s *faultyRevocable) RevokeSubject(ctx context.Context, sub string) (int, error) {
	if err := s.wait(ctx); err != nil {
		return 0, err
	}
	return s.memRevocable.RevokeSubject(ctx, sub)
}

func (s *faultyRevocable) Forget(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err // a network store cannot send anything on a dead context
	}
	return s.memRevocable.Forget(ctx, key)
}

func (s *faultyRevocable) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return s.memRevocable.Remember(ctx, key, ttl)
}

func (s *faultyRevocable) setHold(hold chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = hold
}

// A revocation slower than SessionStoreTimeout answers 503 and forgets the
// jti on a context of its own, so the provider's retry with the same token
// ends the session.
func TestBackChannelLogoutRetryAfterStoreTimeout(t *testing.T) {
	store := &faultyRevocable{memRevocable: newMemRevocable()}
	b := newBCL(t, false, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) {
		cfg.SessionStore = store
		cfg.SessionStoreTimeout = 100 * time.Millisecond
	}})
	alice := b.h.app.newBrowser(t)
	alice.login("/private")
	alice.mustUser()

	store.setHold(make(chan struct{})) // never released: the store is too slow
	tok := b.token(pipatest.LogoutTokenOptions{User: "alice"})
	wantRefusal(t, b.send(t, tok), http.StatusServiceUnavailable, "temporarily_unavailable")
	alice.mustUser()
	if strings.Contains(b.h.logs.String(), "could not forget the jti") {
		t.Errorf("Forget failed after the revocation timed out:\n%s", b.h.logs.String())
	}

	store.setHold(nil) // the store recovered; the provider retries
	if r := b.send(t, tok); r.status != http.StatusOK {
		t.Fatalf("the provider's retry: %d %s; want 200", r.status, r.body)
	}
	alice.mustBeLoggedOut()
}

// A provider that hangs up while the sessions are being ended does not stop
// the revocation.
func TestBackChannelLogoutClientHangsUp(t *testing.T) {
	store := &faultyRevocable{memRevocable: newMemRevocable(), entered: make(chan struct{}, 1)}
	b := newBCL(t, false, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) {
		cfg.SessionStore = store
		cfg.SessionStoreTimeout = 5 * time.Second
	}})
	alice := b.h.app.newBrowser(t)
	alice.login("/private")
	alice.mustUser()

	hold := make(chan struct{})
	store.setHold(hold)
	ctx, cancel := context.WithCancel(t.Context())
	body := url.Values{"logout_token": {b.token(pipatest.LogoutTokenOptions{User: "alice"})}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-store.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the revocation never started")
	}
	cancel() // the provider's client gives up
	if err := <-done; err == nil {
		t.Fatal("the request succeeded although its context was cancelled")
	}
	time.Sleep(50 * time.Millisecond) // let the server see the closed connection
	close(hold)
	eventually(t, "the revocation stopped when the provider hung up", func() bool { return store.len() == 0 })
	alice.mustBeLoggedOut()
}
