package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
	"github.com/pipaauth/pipaauth/pipatest"
)

// The measured routes.
const (
	routeBare    = "/bare"
	routeGuarded = "/guarded"
)

// body is what both routes answer.
var body = []byte("hello, load\n")

// Session stores the app can run with.
const (
	storeCookie = "cookie"    // the whole session sealed in the cookie (pipaauth's default)
	storeRedis  = "redistore" // sessions in a private redis-server, through boj/redistore
	// storeRedisstore: sessions in a private redis-server, through
	// redisstore (rueidis, client-side caching, a RevocableStore).
	storeRedisstore = "redisstore"
	// storeCluster: redisstore on a private 3-master Redis Cluster (no
	// replicas), one rueidis cluster client.
	storeCluster = "redisstore-cluster"
)

// appOptions choose how the measured app is built. The zero value is not
// valid: set Store.
type appOptions struct {
	// Store is where sessions live: storeCookie, or storeRedis, for which
	// startApp starts a private redis-server.
	Store string
}

// app is a pipatest provider and an application server on loopback, with
// the bare and guarded routes, a login and a callback.
type app struct {
	URL      string // http://127.0.0.1:PORT
	provider *pipatest.Server
	srv      *http.Server
	done     chan struct{} // closed when srv.Serve returned
	auth     *pipaauth.Auth
	redis    *redisproc.Server  // with storeRedis and storeRedisstore
	cluster  *redisproc.Cluster // with storeCluster
	closeRS  func()             // closes redisstore's rueidis client

	bareServed, guardedServed atomic.Int64 // requests that reached the handler
}

// startApp starts the provider and the application server, built as opt
// says. Close the app when done.
func startApp(ctx context.Context, opt appOptions) (_ *app, err error) {
	cfg := pipaauth.Config{
		ClientID:     pipatest.DefaultClientID,
		ClientSecret: pipatest.DefaultClientSecret,
		SessionKeys:  [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		// A fixed name, which the load loop sends (the default is unique
		// per client id).
		CookieName: pipaauth.DefaultCookieName,
		// Both servers are plain HTTP on loopback; production uses https.
		InsecureAllowHTTP: true,
		// Failures only: a request of the measured loop logs nothing.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	var rs *redisproc.Server
	var cl *redisproc.Cluster
	var closeRS func()
	switch opt.Store {
	case storeCookie:
	case storeRedis:
		if rs, err = startRedis(); err != nil {
			return nil, err
		}
		store, err := newRedisStore(rs.Addr, cfg.SessionKeys)
		if err != nil {
			rs.Stop()
			return nil, err
		}
		cfg.SessionStore = store
		defer func() {
			if err != nil {
				store.Close()
				rs.Stop()
			}
		}()
	case storeRedisstore:
		if rs, err = startRedis(); err != nil {
			return nil, err
		}
		store, closeClient, err := newRedisstore(rs.Addr)
		if err != nil {
			rs.Stop()
			return nil, err
		}
		cfg.SessionStore = store
		closeRS = closeClient
		defer func() {
			if err != nil {
				closeClient()
				rs.Stop()
			}
		}()
	case storeCluster:
		if cl, err = redisproc.StartCluster(3, 0); err != nil {
			return nil, fmt.Errorf("a local Redis Cluster for -store %s: %w", storeCluster, err)
		}
		store, closeClient, err := newRedisstoreOn(cl.Addrs())
		if err != nil {
			cl.Stop()
			return nil, err
		}
		cfg.SessionStore = store
		closeRS = closeClient
		defer func() {
			if err != nil {
				closeClient()
				cl.Stop()
			}
		}()
	default:
		return nil, fmt.Errorf("unknown session store %q (have: %s, %s, %s, %s)", opt.Store, storeCookie, storeRedis, storeRedisstore, storeCluster)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &app{URL: "http://" + ln.Addr().String(), done: make(chan struct{}), redis: rs, cluster: cl, closeRS: closeRS}
	a.provider = pipatest.NewServer() // on 127.0.0.1 too
	defer func() {
		if err != nil {
			ln.Close()
			a.provider.Close()
		}
	}()
	cfg.Issuer = a.provider.URL
	cfg.RedirectURL = a.URL + "/callback"
	a.auth, err = pipaauth.New(ctx, cfg)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /login", a.auth.LoginHandler())
	mux.Handle("GET /callback", a.auth.CallbackHandler())
	mux.Handle("GET "+routeBare, a.handler(&a.bareServed, false))
	mux.Handle("GET "+routeGuarded, a.auth.RequireLogin(a.handler(&a.guardedServed, true)))
	a.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "pipaload: app server: %v\n", err)
		}
	}()
	return a, nil
}

// handler answers body and counts the request in served; with needUser it
// answers 500 instead, uncounted, when no user is in the context.
func (a *app) handler(served *atomic.Int64, needUser bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if needUser {
			if _, ok := pipaauth.UserFromContext(r.Context()); !ok {
				http.Error(w, "no user in the context", http.StatusInternalServerError)
				return
			}
		}
		served.Add(1)
		w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
		w.Write(body)
	})
}

// served is how many requests reached route's handler so far.
func (a *app) served(route string) int64 {
	if route == routeGuarded {
		return a.guardedServed.Load()
	}
	return a.bareServed.Load()
}

// Close stops the application server and the provider.
func (a *app) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
	<-a.done
	a.provider.Close()
	if a.closeRS != nil {
		a.closeRS()
	}
	if a.cluster != nil {
		a.cluster.Stop()
	}
	if a.redis != nil {
		a.redis.Stop()
	}
}

// login runs the code flow like a browser with a cookie jar (/guarded →
// /login → provider → /callback → /guarded) and returns the session cookie
// as a Cookie header value, name=value.
func (a *app) login(ctx context.Context) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	status, got, _, err := get(ctx, browser, a.URL+routeGuarded, "")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || string(got) != string(body) {
		return "", fmt.Errorf("GET %s through the login: %d %q, want 200 %q", routeGuarded, status, got, body)
	}
	u, _ := url.Parse(a.URL)
	for _, c := range jar.Cookies(u) {
		if c.Name == pipaauth.DefaultCookieName {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", fmt.Errorf("no %s cookie after the login", pipaauth.DefaultCookieName)
}

// verify checks, without following redirects, that both routes answer 200
// and body with the cookie, and that /guarded answers 302 without it.
func (a *app) verify(ctx context.Context, cookie string) error {
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, c := range []struct {
		route, cookie string
		status        int
	}{
		{routeBare, cookie, http.StatusOK},
		{routeGuarded, cookie, http.StatusOK},
		{routeGuarded, "", http.StatusFound},
	} {
		status, got, loc, err := get(ctx, client, a.URL+c.route, c.cookie)
		if err != nil {
			return err
		}
		with := "with"
		if c.cookie == "" {
			with = "without"
		}
		switch {
		case status != c.status:
			return fmt.Errorf("check: GET %s %s the session cookie: status %d (Location %q), want %d", c.route, with, status, loc, c.status)
		case status == http.StatusOK && string(got) != string(body):
			return fmt.Errorf("check: GET %s %s the session cookie: body %q, want %q", c.route, with, got, body)
		}
	}
	return nil
}

// get fetches target with an optional Cookie header and returns the status,
// the body (up to 64 KiB) and the Location header.
func get(ctx context.Context, client *http.Client, target, cookie string) (int, []byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, "", err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, "", err
	}
	return resp.StatusCode, got, resp.Header.Get("Location"), nil
}
