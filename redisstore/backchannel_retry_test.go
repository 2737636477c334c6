package redisstore_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/redisstore"
)

// slowRevoke is a redisstore.Store whose revocations, while slow is set,
// outlast their context, as a Redis busy with another script would.
type slowRevoke struct {
	*redisstore.Store
	slow atomic.Bool
}

func (s *slowRevoke) RevokeSubject(ctx context.Context, sub string) (int, error) {
	if s.slow.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return s.Store.RevokeSubject(ctx, sub)
}

// A back-channel logout whose revocation times out on instance a answers
// 503 and forgets the jti in Redis, so the provider's retry, delivered to
// instance b, ends the session (issue 18, finding 2).
func TestBackChannelLogoutRetriedOnAnotherInstance(t *testing.T) {
	redis := startRedis(t)
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	keys := [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
	start := func(store sessions.Store) string {
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		auth, err := pipaauth.New(context.Background(), pipaauth.Config{
			Issuer:              provider.URL,
			ClientID:            pipatest.DefaultClientID,
			ClientSecret:        pipatest.DefaultClientSecret,
			RedirectURL:         srv.URL + "/callback",
			SessionKeys:         keys,
			SessionStore:        store,
			SessionStoreTimeout: 300 * time.Millisecond,
			InsecureAllowHTTP:   true,
			Logger:              slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/callback", auth.CallbackHandler())
		mux.Handle("/backchannel-logout", auth.BackChannelLogoutHandler())
		mux.Handle("/private", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello")
		})))
		return srv.URL
	}
	slow := &slowRevoke{Store: newStore(t, newClient(t, redis.Addr), redisstore.Options{})}
	a := start(slow)
	b := start(newStore(t, newClient(t, redis.Addr), redisstore.Options{}))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if resp, err := browser.Get(a + "/private"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login on a: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	var session *http.Cookie
	u, _ := url.Parse(a)
	for _, c := range jar.Cookies(u) {
		if sessionCookie(c.Name) {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after the login")
	}

	send := func(base, tok string) int {
		t.Helper()
		resp, err := http.Post(base+"/backchannel-logout", "application/x-www-form-urlencoded",
			strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tok := provider.LogoutToken(pipatest.DefaultClientID, pipatest.LogoutTokenOptions{User: "alice"})
	slow.slow.Store(true)
	if got := send(a, tok); got != http.StatusServiceUnavailable {
		t.Fatalf("back-channel logout on a with a slow store: %d, want 503", got)
	}
	if got := get(t, b+"/private", session); got != 200 {
		t.Fatalf("after the failed revocation, instance b: %d, want 200 (nothing was revoked)", got)
	}
	if got := send(b, tok); got != http.StatusOK {
		t.Fatalf("the provider's retry on instance b: %d, want 200 (the jti was not forgotten)", got)
	}
	if got := get(t, a+"/private", session); got != http.StatusUnauthorized {
		t.Errorf("after the retry, instance a: %d, want 401", got)
	}
}
