package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/userctx"
	"github.com/pipaauth/pipaauth/session"
)

type fixture struct {
	guard    *Guard
	sessions *session.Manager
	started  []string // return paths passed to Start
	errors   []error
	now      time.Time
}

func newFixture(tb testing.TB, cacheSize int) *fixture {
	tb.Helper()
	f := &fixture{now: time.Unix(1_800_000_000, 0)}
	var err error
	f.sessions, err = session.NewManager(session.Options{
		Name:       "__Host-t",
		Secure:     true,
		KeyPairs:   [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		Lifetime:   12 * time.Hour,
		AttemptTTL: 10 * time.Minute,
		Now:        func() time.Time { return f.now },
		CacheSize:  cacheSize,
	})
	if err != nil {
		tb.Fatal(err)
	}
	f.guard, err = New(Config{
		Sessions: f.sessions,
		Start: func(w http.ResponseWriter, r *http.Request, returnTo string) {
			f.started = append(f.started, returnTo)
			http.Redirect(w, r, "https://pipa.example/authorize", http.StatusFound)
		},
		StartStepUp: func(w http.ResponseWriter, r *http.Request, returnTo string, maxAge time.Duration, subject string) {
			f.started = append(f.started, returnTo)
			http.Redirect(w, r, "https://pipa.example/authorize?max_age="+strconv.Itoa(int(maxAge/time.Second)), http.StatusFound)
		},
		Now:       time.Now,
		LoginPath: "/login",
		OnError: func(w http.ResponseWriter, r *http.Request, err error) {
			f.errors = append(f.errors, err)
			w.WriteHeader(errs.StatusOf(err))
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// cookie returns a Cookie header value for a session logged in as u.
func (f *fixture) cookie(tb testing.TB, u session.User) string {
	tb.Helper()
	return f.cookieOf(tb, &session.Data{User: u, LoginAt: f.now, LastSeen: f.now})
}

// cookieOf returns the session cookie of d, as name=value.
func (f *fixture) cookieOf(tb testing.TB, d *session.Data) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	if err := f.sessions.Save(rec, nil, d); err != nil {
		tb.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	return c.Name + "=" + c.Value
}

var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	u, ok := userctx.From(r.Context())
	if !ok {
		http.Error(w, "no user", http.StatusInternalServerError)
		return
	}
	io.WriteString(w, u.ID)
})

func TestRequireLoginPassesUser(t *testing.T) {
	f := newFixture(t, 0)
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Cookie", f.cookie(t, session.User{ID: "u1"}))
	rec := httptest.NewRecorder()
	f.guard.RequireLogin(echo).ServeHTTP(rec, r)
	if rec.Code != 200 || rec.Body.String() != "u1" {
		t.Fatalf("got %d %q, want 200 %q", rec.Code, rec.Body.String(), "u1")
	}
	if v := rec.Header().Get("Vary"); v != "Cookie" {
		t.Errorf("Vary = %q, want Cookie", v)
	}
}

func TestUnauthenticated(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		target   string
		header   map[string]string
		redirect bool
		loginURL string
	}{
		{name: "navigation", method: "GET", target: "/a?b=1", redirect: true},
		{name: "navigation with html accept", method: "GET", target: "/", header: map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}, redirect: true},
		{name: "head", method: "HEAD", target: "/", redirect: true},
		{name: "post", method: "POST", target: "/a", loginURL: "/login"},
		{name: "put", method: "PUT", target: "/a", loginURL: "/login"},
		{name: "delete", method: "DELETE", target: "/a", loginURL: "/login"},
		{name: "json", method: "GET", target: "/api?q=1", header: map[string]string{"Accept": "application/json"}, loginURL: "/login?return_to=%2Fapi%3Fq%3D1"},
		{name: "xhr", method: "GET", target: "/api", header: map[string]string{"X-Requested-With": "XMLHttpRequest"}, loginURL: "/login?return_to=%2Fapi"},
		{name: "fetch", method: "GET", target: "/", header: map[string]string{"Sec-Fetch-Mode": "cors"}, loginURL: "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)
			r := httptest.NewRequest(tt.method, tt.target, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			f.guard.RequireLogin(echo).ServeHTTP(rec, r)
			if tt.redirect {
				if rec.Code != http.StatusFound || len(f.started) != 1 || f.started[0] != tt.target {
					t.Fatalf("got %d, started %q; want 302 and a login returning to %q", rec.Code, f.started, tt.target)
				}
				return
			}
			if rec.Code != http.StatusUnauthorized || rec.Header().Get("Location") != "" || len(f.started) != 0 {
				t.Fatalf("got %d Location %q started %q; want 401 without a login", rec.Code, rec.Header().Get("Location"), f.started)
			}
			var body struct {
				Error    string `json:"error"`
				LoginURL string `json:"login_url"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if body.Error != "login_required" || body.LoginURL != tt.loginURL {
				t.Errorf("body = %+v, want login_required and %q", body, tt.loginURL)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestTamperedCookie(t *testing.T) {
	f := newFixture(t, 0)
	c := f.cookie(t, session.User{ID: "u1"})
	c = c[:len(c)-3] + "AAA"
	r := httptest.NewRequest("GET", "/api", nil)
	r.Header.Set("Cookie", c)
	r.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	f.guard.RequireLogin(echo).ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", rec.Code)
	}
	// Not cleared: a request sent before a login and answered after it
	// would delete the new session.
	if sc := rec.Header().Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("a 401 for an API client wrote Set-Cookie %q, want none", sc)
	}
}

func TestRequireUser(t *testing.T) {
	f := newFixture(t, 0)
	allowAlice := func(u session.User) bool { return u.ID == "alice" }
	h := f.guard.RequireUser(allowAlice)(echo)
	for _, tt := range []struct {
		user string
		want int
	}{{"alice", 200}, {"bob", 403}, {"", 302}} {
		r := httptest.NewRequest("GET", "/admin", nil)
		if tt.user != "" {
			r.Header.Set("Cookie", f.cookie(t, session.User{ID: tt.user}))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tt.want {
			t.Errorf("user %q: got %d, want %d", tt.user, rec.Code, tt.want)
		}
	}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/admin", nil)
	r.Header.Set("Cookie", f.cookie(t, session.User{ID: "alice"}))
	f.guard.RequireUser(nil)(echo).ServeHTTP(rec, r)
	if rec.Code != 403 {
		t.Errorf("RequireUser(nil): got %d, want 403", rec.Code)
	}
}

func TestIdleTouch(t *testing.T) {
	f := newFixture(t, 0)
	var err error
	f.sessions, err = session.NewManager(session.Options{
		Name: "__Host-t", Secure: true,
		KeyPairs:    [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)},
		Lifetime:    12 * time.Hour,
		IdleTimeout: 30 * time.Minute,
		AttemptTTL:  10 * time.Minute,
		Now:         func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.guard.cfg.Sessions = f.sessions
	cookie := f.cookie(t, session.User{ID: "u"})
	get := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		f.guard.RequireLogin(echo).ServeHTTP(rec, r)
		return rec
	}
	if rec := get(); rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("a fresh session was rewritten")
	}
	f.now = f.now.Add(20 * time.Minute)
	rec := get()
	if rec.Code != 200 || rec.Header().Get("Set-Cookie") == "" {
		t.Fatalf("after 20 idle minutes: got %d and no Set-Cookie; want 200 and a rewritten cookie", rec.Code)
	}
	cookie = strings.SplitN(rec.Header().Get("Set-Cookie"), ";", 2)[0]
	f.now = f.now.Add(20 * time.Minute) // 40 minutes after login, 20 after the rewrite
	if rec := get(); rec.Code != 200 {
		t.Errorf("the slid session expired: got %d", rec.Code)
	}
	f.now = f.now.Add(31 * time.Minute)
	if rec := get(); rec.Code != http.StatusFound {
		t.Errorf("after 31 idle minutes: got %d, want 302", rec.Code)
	}
}

// A deadline set by an outer middleware is not a client that went away: a
// store failure must still answer 503, not an empty 200.
func TestStoreFailureUnderDeadline(t *testing.T) {
	f := newFixture(t, 0)
	f.guard.cfg.Sessions = failingSessions{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	f.guard.RequireLogin(echo).ServeHTTP(rec, r)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", rec.Code)
	}
}

type failingSessions struct{}

func (failingSessions) Load(*http.Request) (*session.Data, error) {
	return nil, fmt.Errorf("%w: no answer", errs.ErrSessionStore)
}
func (failingSessions) Touch(http.ResponseWriter, *http.Request, *session.Data) error { return nil }

// The guard's context and Vary header behave as context.WithValue and
// Header.Add would: the user survives derived contexts, other values pass
// through, and a handler's own Vary values add to the guard's, also when
// the response already had one.
func TestGuardContextAndVary(t *testing.T) {
	f := newFixture(t, 0)
	type other struct{}
	h := f.guard.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		u, ok := userctx.From(context.WithValue(ctx, other{}, 1))
		if !ok || u.ID != "u1" || r.Context().Value(other{}) != "parent" {
			t.Errorf("in the handler: user %+v %v, other value %v", u, ok, r.Context().Value(other{}))
		}
		w.Header().Add("Vary", "Origin")
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, pre := range [][]string{nil, {"Accept"}} {
		r := httptest.NewRequest("GET", "/x", nil)
		r = r.WithContext(context.WithValue(r.Context(), other{}, "parent"))
		r.Header.Set("Cookie", f.cookie(t, session.User{ID: "u1"}))
		w := httptest.NewRecorder()
		if pre != nil {
			w.Header()["Vary"] = pre
		}
		h.ServeHTTP(w, r)
		want := append(append([]string{}, pre...), "Cookie", "Origin")
		if got := w.Header().Values("Vary"); !slices.Equal(got, want) || w.Code != http.StatusNoContent {
			t.Errorf("Vary %q, status %d; want %q, 204", got, w.Code, want)
		}
	}
}

// The guard's context is its request's: a deadline, a cancellation and its
// cause reach the handler, and contexts derived in the handler follow them.
func TestGuardContextFollowsRequest(t *testing.T) {
	f := newFixture(t, 0)
	deadline := time.Now().Add(time.Hour)
	cause := errors.New("client went away")
	parent, cancel := context.WithCancelCause(context.Background())
	parent, stop := context.WithDeadline(parent, deadline)
	defer stop()
	var seen context.Context
	h := f.guard.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Context()
		if d, ok := seen.Deadline(); !ok || !d.Equal(deadline) {
			t.Errorf("Deadline() = %v, %v; want %v, true", d, ok, deadline)
		}
		if seen.Err() != nil {
			t.Errorf("Err() = %v before the request was canceled", seen.Err())
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	r := httptest.NewRequestWithContext(parent, "GET", "/x", nil)
	r.Header.Set("Cookie", f.cookie(t, session.User{ID: "u1"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent || seen == nil {
		t.Fatalf("status %d; want 204 from the handler", w.Code)
	}
	derived, release := context.WithCancel(seen)
	defer release()
	cancel(cause)
	select {
	case <-seen.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not canceled with its request's")
	}
	<-derived.Done()
	if !errors.Is(seen.Err(), context.Canceled) || context.Cause(seen) != cause || context.Cause(derived) != cause {
		t.Errorf("Err() = %v, Cause = %v (derived %v); want context.Canceled and %v", seen.Err(), context.Cause(seen), context.Cause(derived), cause)
	}
	if u, ok := userctx.From(derived); !ok || u.ID != "u1" {
		t.Errorf("user in a derived context: %+v, %v", u, ok)
	}
	if s := fmt.Sprint(seen); !strings.Contains(s, "pipaauth user") {
		t.Errorf("String() = %q, want it to name the user value", s)
	}
}

// A handler that writes its request back over one an outer middleware
// handed down (a "request holder", against net/http's advice) must not
// turn the guard's context into a loop: the context takes its parent
// once. Run in a child process, as a loop ends in a fatal stack overflow.
func TestGuardContextSurvivesRequestHolder(t *testing.T) {
	if os.Getenv("PIPAAUTH_HOLDER_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGuardContextSurvivesRequestHolder$")
		cmd.Env = append(os.Environ(), "PIPAAUTH_HOLDER_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			first, _, _ := strings.Cut(string(out), "\n\n")
			t.Fatalf("child: %v\n%.600s", err, first)
		}
		return
	}
	f := newFixture(t, 0)
	type holderKey struct{}
	var logged string
	publish := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*r.Context().Value(holderKey{}).(*http.Request) = *r // publish upward
		w.WriteHeader(http.StatusNoContent)
	})
	accessLog := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r2 := new(http.Request)
			*r2 = *r.WithContext(context.WithValue(r.Context(), holderKey{}, r2))
			next.ServeHTTP(w, r2)
			u, _ := userctx.From(r2.Context())
			logged = u.ID
			if r2.Context().Err() != nil {
				logged += " canceled"
			}
		})
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Cookie", f.cookie(t, session.User{ID: "u1"}))
	accessLog(f.guard.RequireLogin(publish)).ServeHTTP(httptest.NewRecorder(), r)
	if logged != "u1" {
		t.Fatalf("the access log saw user %q, want u1", logged)
	}
}

// A logged-in request costs the guard one allocation: the request it hands
// on, that request's context and the Vary header's backing array share
// one object, since r.WithContext is inlined and its copy does not escape.
// A toolchain that stopped inlining it would show here first.
func TestGuardAllocatesOnce(t *testing.T) {
	f := newFixture(t, 0)
	seen := false
	h := f.guard.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, seen = userctx.From(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Cookie", f.cookie(t, session.User{ID: "u1"}))
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r) // fills the cache
	allocs := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	})
	if !seen || w.code != http.StatusNoContent {
		t.Fatalf("the handler saw a user: %v, status %d; want true, 204", seen, w.code)
	}
	if allocs > 1 {
		t.Errorf("a guarded request allocates %v times, want 1", allocs)
	}
}
