package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/boj/redistore"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/e2e/internal/redisproc"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/redisstore"
)

// Session stores the soak runs on (-store).
const (
	storeRedistore  = "redistore"  // github.com/boj/redistore, a plain gorilla store
	storeRedisstore = "redisstore" // this repository's redisstore (rueidis, client-side caching)
)

// keyPrefix is the Redis key prefix of the sessions with redistore.
const keyPrefix = "pipasoak:session_"

// rsPrefix is redisstore's KeyPrefix: sessions are rsPrefix+"{tag}:s:<id>",
// their sub and sid indexes rsPrefix+"{tag}:sub:..." and
// rsPrefix+"{tag}:sid:..." (a tag hashed from the sub, or from the sid).
const rsPrefix = "pipasoak:"

// sessionPattern matches the session keys of store (SCAN MATCH).
func sessionPattern(store string) string {
	if store == storeRedisstore {
		return rsPrefix + "{*}:s:*"
	}
	return keyPrefix + "*"
}

// env is everything the soak runs against.
type env struct {
	redis    *redisproc.Server
	provider *exec.Cmd
	provIn   io.WriteCloser // closing it stops PiPA
	issuer   string
	apps     []*httptest.Server
	closers  []func() // the stores' pools and clients
	proxy    *httptest.Server
	url      string          // public URL: the proxy
	proxyTr  *http.Transport // proxy to instances
	appTr    *http.Transport // instances to PiPA
	logs     *logCounter
	routed   [2]atomic.Int64 // requests the proxy sent to each instance
}

// start brings up Redis, PiPA, the instances and the proxy.
func start(ctx context.Context, cfg config, workers int) (e *env, err error) {
	e = &env{logs: &logCounter{}}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	if e.redis, err = redisproc.Start(redisproc.Options{Bin: cfg.redisServer}); err != nil {
		return e, err
	}
	if err = e.startProvider(); err != nil {
		return e, err
	}

	var next atomic.Uint64
	e.proxyTr = &http.Transport{MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: time.Minute}
	e.appTr = &http.Transport{MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: time.Minute}
	backends := make([]*url.URL, 2)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := int((next.Add(1) - 1) % 2)
			e.routed[i].Add(1)
			pr.SetURL(backends[i])
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: e.proxyTr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			e.logs.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelError, "proxy: "+err.Error(), 0))
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	e.proxy = httptest.NewServer(proxy)
	e.url = e.proxy.URL

	keys := [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
	for i, name := range []string{"a", "b"} {
		mux := http.NewServeMux()
		app := httptest.NewServer(mux)
		e.apps = append(e.apps, app)
		backends[i], _ = url.Parse(app.URL)
		var store sessions.Store
		switch cfg.store {
		case storeRedisstore:
			client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{e.redis.Addr}, ConnWriteTimeout: time.Second, RetryDelay: redisstore.QuickRetry})
			if err != nil {
				return e, fmt.Errorf("rueidis: %w", err)
			}
			e.closers = append(e.closers, client.Close)
			// Every soak browser is the same pipatest user, and -keep of them
			// stay logged in: no cap on sessions per user.
			if store, err = redisstore.New(client, redisstore.Options{KeyPrefix: rsPrefix, MaxSessionsPerUser: -1}); err != nil {
				return e, err
			}
		default:
			rs, err := redistore.NewRediStoreWithPool(redisproc.NewPool(e.redis.Addr, 2*workers), keys...)
			if err != nil {
				return e, fmt.Errorf("redistore: %w", err)
			}
			rs.SetKeyPrefix(keyPrefix)
			e.closers = append(e.closers, func() { rs.Close() })
			store = rs
		}
		auth, err := pipaauth.New(ctx, pipaauth.Config{
			Issuer:            e.issuer,
			ClientID:          pipatest.DefaultClientID,
			ClientSecret:      pipatest.DefaultClientSecret,
			RedirectURL:       e.url + "/callback",
			SessionKeys:       keys,
			SessionStore:      store,
			HTTPClient:        &http.Client{Transport: e.appTr, Timeout: 10 * time.Second},
			InsecureAllowHTTP: true, // loopback only
			Logger:            slog.New(e.logs).With("instance", name),
		})
		if err != nil {
			return e, fmt.Errorf("instance %s: %w", name, err)
		}
		mux.Handle("/login", auth.LoginHandler())
		mux.Handle("/callback", auth.CallbackHandler())
		mux.Handle("POST /logout", auth.LogoutHandler())
		mux.Handle("/private", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := pipaauth.UserFromContext(r.Context())
			fmt.Fprintf(w, "instance=%s user=%s", name, u.Email)
		})))
	}
	return e, nil
}

// closeIdle closes every idle HTTP connection of the run's transports, so
// that goroutine counts compare like with like.
func (e *env) closeIdle() {
	e.proxyTr.CloseIdleConnections()
	e.appTr.CloseIdleConnections()
}

func (e *env) close() {
	if e.proxy != nil {
		e.proxy.Close()
	}
	for _, a := range e.apps {
		a.Close()
	}
	for _, c := range e.closers {
		c()
	}
	if e.provider != nil {
		e.provIn.Close()
		done := make(chan struct{})
		go func() { e.provider.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			e.provider.Process.Kill()
			<-done
		}
	}
	if e.redis != nil {
		e.redis.Stop()
	}
}

// startProvider runs this program with -serve-provider and reads PiPA's URL.
func (e *env) startProvider() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, providerFlag)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting PiPA: %w", err)
	}
	e.provider, e.provIn = cmd, stdin
	line, err := bufferedLine(stdout, 30*time.Second)
	if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") {
		return fmt.Errorf("PiPA did not report its URL: %q, %v", line, err)
	}
	e.issuer = line
	return nil
}

// logCounter is the instances' slog handler: it counts records by level
// and keeps the first few warnings and errors.
type logCounter struct {
	attrs    []slog.Attr
	shared   *logShared
	initOnce sync.Once
}

type logShared struct {
	mu       sync.Mutex
	info     int
	warnings int
	first    []string
}

func (h *logCounter) s() *logShared {
	h.initOnce.Do(func() {
		if h.shared == nil {
			h.shared = &logShared{}
		}
	})
	return h.shared
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	s := h.s()
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Level < slog.LevelWarn {
		s.info++
		return nil
	}
	s.warnings++
	if len(s.first) < 5 {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
		for _, a := range h.attrs {
			fmt.Fprintf(&b, " %s", a)
		}
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
		s.first = append(s.first, b.String())
	}
	return nil
}

func (h *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCounter{attrs: append(append([]slog.Attr(nil), h.attrs...), as...), shared: h.s()}
}

func (h *logCounter) WithGroup(string) slog.Handler { return h }

func (h *logCounter) counts() (info, warnings int, first []string) {
	s := h.s()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info, s.warnings, append([]string(nil), s.first...)
}
