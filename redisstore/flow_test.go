package redisstore_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/redisstore"
)

// instance is one application instance with its own rueidis client.
type instance struct {
	srv  *httptest.Server
	auth *pipaauth.Auth
}

func newInstance(t *testing.T, provider *pipatest.Server, redisAddr string, keys [][]byte) *instance {
	t.Helper()
	store := newStore(t, newClient(t, redisAddr), redisstore.Options{})
	mux := http.NewServeMux()
	in := &instance{srv: httptest.NewServer(mux)}
	t.Cleanup(in.srv.Close)
	var err error
	in.auth, err = pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:              provider.URL,
		ClientID:            pipatest.DefaultClientID,
		ClientSecret:        pipatest.DefaultClientSecret,
		RedirectURL:         in.srv.URL + "/callback",
		SessionKeys:         keys,
		SessionStore:        store,
		SessionStoreTimeout: 500 * time.Millisecond,
		InsecureAllowHTTP:   true,
		Logger:              slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/callback", in.auth.CallbackHandler())
	mux.Handle("/logout", in.auth.LogoutHandler())
	mux.Handle("/private", in.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, "hello "+u.ID)
	})))
	return in
}

// get sends GET url with only the session cookie c (nil: none), following
// no redirect, and returns the status.
func get(t *testing.T, url string, c *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/json") // an API call: 401, not a redirect
	if c != nil {
		req.AddCookie(c)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// One login through pipatest on instance a, the session served by instance
// b from its cache, logout on a refused by b within 100 ms, Redis frozen
// answered with 503 within the store timeout, then 200 again after the thaw.
func TestLoginAcrossInstances(t *testing.T) {
	redis := startRedis(t)
	r := newRaw(t, redis.Addr)
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	keys := [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
	a := newInstance(t, provider, redis.Addr, keys)
	b := newInstance(t, provider, redis.Addr, keys)

	login := func(t *testing.T) *http.Cookie {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		resp, err := browser.Get(a.srv.URL + "/private")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello ") {
			t.Fatalf("after the login: %d %q", resp.StatusCode, body)
		}
		for _, c := range jar.Cookies(resp.Request.URL) {
			if sessionCookie(c.Name) {
				return c
			}
		}
		t.Fatal("no session cookie after the login")
		return nil
	}

	session := login(t)
	if n := r.int("DBSIZE"); n < 2 {
		t.Errorf("Redis holds %d keys after a login, want the session and its index", n)
	}
	if got := get(t, b.srv.URL+"/private", session); got != 200 {
		t.Fatalf("instance b: %d, want 200", got)
	}
	before := r.commands("hmget")
	for range 50 {
		if got := get(t, b.srv.URL+"/private", session); got != 200 {
			t.Fatalf("instance b: %d, want 200", got)
		}
	}
	// 50 requests within a second or so: at most a reload per CacheTTL.
	n := r.commands("hmget") - before
	t.Logf("50 guarded requests on instance b ran %d HMGET on Redis (%.2f Redis commands per request)", n, float64(n)/50)
	if n > 2 {
		t.Errorf("50 guarded requests ran HMGET %d times on Redis, want at most 2", n)
	}

	logout, _ := http.NewRequest("POST", a.srv.URL+"/logout", nil)
	logout.AddCookie(session)
	resp, err := http.DefaultTransport.RoundTrip(logout)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	begin := time.Now()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	for get(t, b.srv.URL+"/private", session) != http.StatusUnauthorized {
		if time.Since(begin) > time.Second {
			t.Fatal("instance b still serves the session 1s after the logout on a")
		}
	}
	took := time.Since(begin)
	t.Logf("logout on instance a refused by instance b %s later (the copy of the cookie was cached there)", took.Round(100*time.Microsecond))
	if took > 100*time.Millisecond {
		t.Errorf("logout took %s to reach instance b, want within 100ms", took)
	}

	session = login(t)
	if got := get(t, b.srv.URL+"/private", session); got != 200 {
		t.Fatalf("instance b: %d, want 200", got)
	}
	if err := redis.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(redisstore.DefaultCacheTTL + 50*time.Millisecond)
	begin = time.Now()
	if got := get(t, b.srv.URL+"/private", session); got != http.StatusServiceUnavailable {
		t.Errorf("with Redis frozen: %d, want 503", got)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("the 503 took %s with a 500ms store timeout", took)
	}
	if err := redis.Thaw(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get(t, b.srv.URL+"/private", session) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the session does not work again 5s after the thaw")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionCookie reports whether name is pipaauth's default session cookie:
// DefaultCookieName, a dash and 12 hex digits of a hash of the client id
// (plain HTTP: no __Host- prefix).
func sessionCookie(name string) bool {
	rest, ok := strings.CutPrefix(name, pipaauth.DefaultCookieName+"-")
	return ok && len(rest) == 12 && strings.Trim(rest, "0123456789abcdef") == ""
}
