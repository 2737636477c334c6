package pipaauth_test

// Config.OnEvent: one event per outcome, with a stable reason, after the
// response is decided, never carrying a secret.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// eventLog records the events of an Auth.
type eventLog struct {
	mu     sync.Mutex
	events []pipaauth.Event
}

func (l *eventLog) record(_ context.Context, e pipaauth.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns and forgets the events so far.
func (l *eventLog) take() []pipaauth.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// reasons is the documented set (docs/events.md, "Reasons").
var reasons = []string{
	pipaauth.ReasonStateUnknown, pipaauth.ReasonCallbackMalformed, pipaauth.ReasonIssuerMismatch,
	pipaauth.ReasonProviderDenied, pipaauth.ReasonProviderError, pipaauth.ReasonExchangeRefused,
	pipaauth.ReasonExchangeFailed, pipaauth.ReasonExchangeTimeout, pipaauth.ReasonNonceMismatch,
	pipaauth.ReasonIDTokenExpired, pipaauth.ReasonIDTokenInvalid, pipaauth.ReasonSessionStore,
	pipaauth.ReasonCookieTooLarge, pipaauth.ReasonDiscoveryFailed, pipaauth.ReasonRefreshRefused,
	pipaauth.ReasonNoRefreshToken, pipaauth.ReasonSessionEnded, pipaauth.ReasonInternal,
	pipaauth.ReasonKeysUnavailable,
	pipaauth.ReasonClaimsTooLarge,
}

// eventHarness is a flow harness whose Auth records its events.
func eventHarness(t *testing.T, configure func(*pipaauth.Config)) (*harness, *eventLog) {
	t.Helper()
	log := &eventLog{}
	h := newHarness(t, setup{configure: func(c *pipaauth.Config) {
		c.OnEvent = log.record
		if configure != nil {
			configure(c)
		}
	}})
	return h, log
}

// want is an expected event; Duration is only checked to be positive.
type want struct {
	kind   pipaauth.EventKind
	reason string
	user   string
	timed  bool // Duration > 0
}

func checkEvents(t *testing.T, got []pipaauth.Event, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("events %+v, want %d: %+v", got, len(wants), wants)
	}
	for i, w := range wants {
		e := got[i]
		if e.Kind != w.kind || e.Reason != w.reason || e.UserID != w.user {
			t.Errorf("event %d = {%s %q %q}, want {%s %q %q}", i, e.Kind, e.Reason, e.UserID, w.kind, w.reason, w.user)
		}
		if w.timed && e.Duration <= 0 {
			t.Errorf("event %d (%s): Duration %v, want > 0", i, e.Kind, e.Duration)
		}
		if e.Duration < 0 || e.Duration > time.Minute {
			t.Errorf("event %d (%s): Duration %v is not a plausible duration", i, e.Kind, e.Duration)
		}
	}
}

func TestEventsLoginAndLogout(t *testing.T) {
	t.Parallel()
	h, log := eventHarness(t, nil)
	b := h.app.newBrowser(t)
	b.login("/private")
	alice := h.subject("alice")
	checkEvents(t, log.take(), want{pipaauth.EventLogin, "", alice, true})
	b.mustUser()
	b.login("/login") // a second login: a second event
	checkEvents(t, log.take(), want{pipaauth.EventLogin, "", alice, true})
	if r := b.post("/logout"); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	checkEvents(t, log.take(), want{pipaauth.EventLogout, "", alice, false})
	b.post("/logout") // nobody to log out: no event
	if got := log.take(); len(got) != 0 {
		t.Errorf("logout without a session: events %+v, want none", got)
	}
	// A replayed callback in a browser that is logged in changes nothing
	// and is no outcome.
	auth := b.startLogin("/private")
	cb := b.authorize(auth)
	if r := b.get(cb); r.status != http.StatusSeeOther {
		t.Fatalf("callback: %d", r.status)
	}
	log.take()
	if r := b.get(cb); r.status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("replayed callback: %d to %q, want 303 to /", r.status, r.location())
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("replayed callback: events %+v, want none", got)
	}
}

// Each failure class gives one login_failed with its own reason.
func TestEventReasonsOfFailedLogins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason    string
		configure func(*pipaauth.Config)
		behavior  pipatest.Behavior
		run       func(t *testing.T, h *harness, b *browser) // default: a login from /private
	}{
		{reason: pipaauth.ReasonStateUnknown, run: func(t *testing.T, h *harness, b *browser) {
			b.get("/callback?state=" + strings.Repeat("A", 22) + "&code=c")
		}},
		{reason: pipaauth.ReasonStateUnknown, run: func(t *testing.T, h *harness, b *browser) {
			b.get("/callback?code=c") // no state at all
		}},
		{reason: pipaauth.ReasonCallbackMalformed, run: func(t *testing.T, h *harness, b *browser) {
			b.get("/callback?state=a&state=b&code=c")
		}},
		{reason: pipaauth.ReasonCallbackMalformed, run: func(t *testing.T, h *harness, b *browser) {
			b.post("/callback?state=a&code=c")
		}},
		{reason: pipaauth.ReasonCallbackMalformed, run: func(t *testing.T, h *harness, b *browser) {
			cb := b.authorize(b.startLogin("/private"))
			b.get(withQuery(t, cb, func(q url.Values) { q.Del("code") }))
		}},
		{reason: pipaauth.ReasonIssuerMismatch, run: func(t *testing.T, h *harness, b *browser) {
			cb := b.authorize(b.startLogin("/private"))
			b.get(withQuery(t, cb, func(q url.Values) { q.Set("iss", "https://evil.example") }))
		}},
		{reason: pipaauth.ReasonIssuerMismatch, run: func(t *testing.T, h *harness, b *browser) {
			// The provider promises iss (RFC 9207); a callback without it is refused.
			cb := b.authorize(b.startLogin("/private"))
			b.get(withQuery(t, cb, func(q url.Values) { q.Del("iss") }))
		}},
		{reason: pipaauth.ReasonProviderDenied, behavior: pipatest.Behavior{AuthorizeError: "access_denied"}},
		{reason: pipaauth.ReasonProviderError, behavior: pipatest.Behavior{AuthorizeError: "temporarily_unavailable"}},
		{reason: pipaauth.ReasonExchangeRefused, behavior: pipatest.Behavior{TokenStatus: http.StatusBadRequest}},
		{reason: pipaauth.ReasonExchangeFailed, behavior: pipatest.Behavior{TokenStatus: http.StatusInternalServerError}},
		{
			reason:    pipaauth.ReasonExchangeTimeout,
			configure: func(c *pipaauth.Config) { c.ExchangeTimeout = 200 * time.Millisecond },
			behavior:  pipatest.Behavior{TokenDelay: 10 * time.Second},
		},
		{reason: pipaauth.ReasonNonceMismatch, behavior: pipatest.Behavior{WrongNonce: true}},
		{reason: pipaauth.ReasonUnreadable, behavior: pipatest.Behavior{TokenContentType: "text/plain"}},
		{reason: pipaauth.ReasonUnreadable, behavior: pipatest.Behavior{ExpiresIn: 1.5}},
		{reason: pipaauth.ReasonUserInfoInvalid, behavior: pipatest.Behavior{EmailOnlyAtUserInfo: true, UserInfoWrongSubject: true}},
		{reason: pipaauth.ReasonIDTokenExpired, behavior: pipatest.Behavior{Expired: true}},
		{reason: pipaauth.ReasonIDTokenInvalid, behavior: pipatest.Behavior{BadSignature: true}},
		{reason: pipaauth.ReasonIDTokenInvalid, behavior: pipatest.Behavior{WrongAudience: true}},
		{
			reason:    pipaauth.ReasonCookieTooLarge,
			configure: func(c *pipaauth.Config) { c.KeepTokens = true },
			behavior:  pipatest.Behavior{TokenHook: func(resp map[string]any) { resp["refresh_token"] = strings.Repeat("x", 5000) }},
		},
		{
			reason:    pipaauth.ReasonSessionStore,
			configure: func(c *pipaauth.Config) { c.SessionStore = failingStore{} },
			run: func(t *testing.T, h *harness, b *browser) {
				// A login start touches no store (issue 5): the callback's
				// save is what fails.
				if r := b.finish(b.startLogin("/private")); r.status != http.StatusServiceUnavailable {
					t.Errorf("callback with the store down: %d, want 503", r.status)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			h, log := eventHarness(t, tt.configure)
			h.setBehavior(tt.behavior)
			b := h.app.newBrowser(t)
			if tt.run != nil {
				tt.run(t, h, b)
			} else {
				r := b.finish(b.startLogin("/private"))
				if r.status < 400 {
					t.Fatalf("the login did not fail: %d", r.status)
				}
			}
			checkEvents(t, log.take(), want{pipaauth.EventLoginFailed, tt.reason, "", false})
		})
	}
}

// eventRefreshApp is a plain-HTTP application with KeepTokens, a clock the test
// moves, and a /token route calling Token.
type eventRefreshApp struct {
	*testApp
	provider *pipatest.Server
	offset   atomic.Int64
	events   *eventLog
	client   *http.Client
}

func newEventRefreshApp(t *testing.T, tokenHook func(map[string]any), configure func(*pipaauth.Config)) *eventRefreshApp {
	t.Helper()
	ra := &eventRefreshApp{provider: pipatest.NewServer(), events: &eventLog{}}
	t.Cleanup(ra.provider.Close)
	// One clock for both: a refreshed ID token's exp and iat are checked.
	ra.provider.SetClock(func() time.Time { return time.Now().Add(time.Duration(ra.offset.Load())) })
	ra.provider.SetBehavior(pipatest.Behavior{TokenHook: tokenHook})
	ra.testApp = newTestApp(t, ra.provider, func(c *pipaauth.Config) {
		c.KeepTokens = true
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ra.offset.Load())) }
		c.OnEvent = ra.events.record
		if configure != nil {
			configure(c)
		}
	})
	ra.mux.Handle("/login", ra.auth.LoginHandler())
	ra.mux.Handle("/callback", ra.auth.CallbackHandler())
	ra.mux.Handle("/logout", ra.auth.LogoutHandler())
	ra.mux.Handle("/{$}", text("home"))
	ra.mux.Handle("/token", ra.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := ra.auth.Token(w, r)
		if err != nil {
			http.Error(w, "no token", http.StatusBadGateway)
			return
		}
		io.WriteString(w, tok.AccessToken)
	})))
	jar, _ := cookiejar.New(nil)
	ra.client = &http.Client{Jar: jar}
	if code, _ := ra.get(t, "/login"); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	return ra
}

func (ra *eventRefreshApp) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := ra.client.Get(ra.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEventsRefresh(t *testing.T) {
	t.Parallel()
	t.Run("refreshed", func(t *testing.T) {
		t.Parallel()
		ra := newEventRefreshApp(t, nil, nil)
		alice := ra.provider.Subject(clientID, "alice")
		checkEvents(t, ra.events.take(), want{pipaauth.EventLogin, "", alice, true})
		ra.get(t, "/token") // fresh: no refresh, no event
		ra.offset.Add(int64(2 * time.Hour))
		if code, _ := ra.get(t, "/token"); code != http.StatusOK {
			t.Fatalf("Token after expiry: %d", code)
		}
		checkEvents(t, ra.events.take(), want{pipaauth.EventRefresh, "", alice, true})
		ra.get(t, "/token") // refreshed: no event
		if got := ra.events.take(); len(got) != 0 {
			t.Errorf("Token with a fresh access token: events %+v, want none", got)
		}
	})
	t.Run("provider fails", func(t *testing.T) {
		t.Parallel()
		ra := newEventRefreshApp(t, nil, nil)
		ra.events.take()
		ra.provider.SetBehavior(pipatest.Behavior{TokenStatus: http.StatusServiceUnavailable})
		ra.offset.Add(int64(2 * time.Hour))
		ra.get(t, "/token")
		checkEvents(t, ra.events.take(), want{pipaauth.EventRefreshFailed, pipaauth.ReasonExchangeFailed, ra.provider.Subject(clientID, "alice"), true})
	})
	t.Run("provider too slow", func(t *testing.T) {
		t.Parallel()
		ra := newEventRefreshApp(t, nil, func(c *pipaauth.Config) { c.ExchangeTimeout = 200 * time.Millisecond })
		ra.events.take()
		ra.provider.SetBehavior(pipatest.Behavior{TokenDelay: 10 * time.Second})
		ra.offset.Add(int64(2 * time.Hour))
		ra.get(t, "/token")
		checkEvents(t, ra.events.take(), want{pipaauth.EventRefreshFailed, pipaauth.ReasonExchangeTimeout, ra.provider.Subject(clientID, "alice"), true})
	})
	t.Run("refresh token revoked", func(t *testing.T) {
		t.Parallel()
		ra := newEventRefreshApp(t, nil, nil)
		ra.events.take()
		ra.provider.RevokeRefreshTokens("alice")
		ra.offset.Add(int64(2 * time.Hour))
		ra.get(t, "/token")
		checkEvents(t, ra.events.take(), want{pipaauth.EventRefreshFailed, pipaauth.ReasonRefreshRefused, ra.provider.Subject(clientID, "alice"), true})
	})
	t.Run("no refresh token", func(t *testing.T) {
		t.Parallel()
		ra := newEventRefreshApp(t, func(resp map[string]any) { delete(resp, "refresh_token") }, nil)
		ra.events.take()
		ra.offset.Add(int64(2 * time.Hour))
		ra.get(t, "/token")
		checkEvents(t, ra.events.take(), want{pipaauth.EventRefreshFailed, pipaauth.ReasonNoRefreshToken, ra.provider.Subject(clientID, "alice"), false})
	})
}

func TestEventsStoreErrors(t *testing.T) {
	t.Parallel()
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	log := &eventLog{}
	auth := newTestApp(t, provider, func(c *pipaauth.Config) {
		c.SessionStore = failingStore{}
		c.OnEvent = log.record
	}).auth
	for _, tt := range []struct {
		name string
		h    http.Handler
		req  *http.Request
	}{
		{"guard", auth.RequireLogin(http.NotFoundHandler()), httptest.NewRequest("GET", "/private", nil)},
		{"logout", auth.LogoutHandler(), httptest.NewRequest("POST", "/logout", nil)},
		{"public page", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { auth.User(r) }), httptest.NewRequest("GET", "/", nil)},
		{"Token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { auth.Token(w, r) }), httptest.NewRequest("GET", "/", nil)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.AddCookie(&http.Cookie{Name: plainCookieName, Value: "some-session-id"})
			tt.h.ServeHTTP(httptest.NewRecorder(), tt.req)
			checkEvents(t, log.take(), want{pipaauth.EventStoreError, pipaauth.ReasonSessionStore, "", false})
		})
	}
}

// statusKey holds the response recorder of a request, for hooks that check
// when they are called.
type statusKey struct{}

type statusRecorder struct {
	http.ResponseWriter
	status   int
	returned bool // the handler has returned
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// The hook runs synchronously, on the request, after the response's status
// is decided.
func TestEventsAfterTheResponseIsDecided(t *testing.T) {
	t.Parallel()
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	type seen struct {
		kind     pipaauth.EventKind
		status   int
		returned bool
	}
	var mu sync.Mutex
	var calls []seen
	pa := newTestApp(t, provider, func(c *pipaauth.Config) {
		c.OnEvent = func(ctx context.Context, e pipaauth.Event) {
			rec, _ := ctx.Value(statusKey{}).(*statusRecorder)
			mu.Lock()
			defer mu.Unlock()
			if rec == nil {
				calls = append(calls, seen{kind: e.Kind, status: -1})
				return
			}
			calls = append(calls, seen{e.Kind, rec.status, rec.returned})
		}
	})
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w}
			h.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), statusKey{}, rec)))
			rec.returned = true
		})
	}
	pa.mux.Handle("/login", wrap(pa.auth.LoginHandler()))
	pa.mux.Handle("/callback", wrap(pa.auth.CallbackHandler()))
	pa.mux.Handle("/logout", wrap(pa.auth.LogoutHandler()))
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	c.Get(pa.srv.URL + "/callback?state=unknown&code=c")
	c.Get(pa.srv.URL + "/login")
	c.Post(pa.srv.URL+"/logout", "", nil)
	mu.Lock()
	defer mu.Unlock()
	wantCalls := []seen{
		{pipaauth.EventLoginFailed, http.StatusBadRequest, false},
		{pipaauth.EventLogin, http.StatusSeeOther, false},
		{pipaauth.EventLogout, http.StatusSeeOther, false},
	}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("hook saw %+v, want %+v (status decided, handler not yet returned)", calls, wantCalls)
	}
}

// A panicking hook is recovered and logged; the login it reports is not
// affected.
func TestEventHookPanics(t *testing.T) {
	t.Parallel()
	h, _ := eventHarness(t, func(c *pipaauth.Config) {
		c.OnEvent = func(context.Context, pipaauth.Event) { panic("metrics backend exploded") }
	})
	b := h.app.newBrowser(t)
	b.login("/private")
	if u := b.mustUser(); u.Email != "alice@example.com" {
		t.Errorf("user %+v, want alice", u)
	}
	if r := h.app.newBrowser(t).get("/callback?state=unknown&code=c"); r.status != http.StatusBadRequest {
		t.Errorf("failed callback with a panicking hook: %d, want 400", r.status)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "OnEvent panicked"); n != 2 || !strings.Contains(logs, "metrics backend exploded") {
		t.Errorf("log has %d panics logged, want 2 with the panic value:\n%s", n, logs)
	}
}

// Every event of many flows is scanned for the codes, tokens, states,
// nonces, cookie values and client secret of the test, and every reason
// must be one of the documented set.
func TestEventsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	h, log := eventHarness(t, func(c *pipaauth.Config) { c.KeepTokens = true })
	secrets := h.secrets.all // codes, tokens, client secret
	var extra []string       // states, nonces, cookie values
	b := h.app.newBrowser(t)
	login := func(path string) *response {
		auth := b.startLogin(path)
		q := query(t, auth)
		extra = append(extra, q.Get("state"), q.Get("nonce"))
		r := b.finish(auth)
		u, _ := url.Parse(h.app.url)
		for _, c := range b.jar.Cookies(u) {
			extra = append(extra, c.Value)
		}
		return r
	}
	login("/private")
	h.setBehavior(pipatest.Behavior{WrongNonce: true})
	b.post("/logout")
	login("/private")
	h.setBehavior(pipatest.Behavior{AuthorizeError: "access_denied"})
	login("/private")
	h.setBehavior(pipatest.Behavior{TokenStatus: 400})
	login("/private")
	h.setBehavior(pipatest.Behavior{})
	login("/private")
	b.post("/logout")
	b.get("/callback?state=" + extra[0] + "&code=replayed")

	events := log.take()
	if len(events) < 6 {
		t.Fatalf("only %d events: %+v", len(events), events)
	}
	all := secrets()
	for _, s := range extra {
		if len(s) >= 8 {
			all[s] = "a state, nonce or cookie value"
		}
	}
	codes, tokens := h.secrets.counts()
	if codes < 4 || tokens < 4 || len(extra) < 10 {
		t.Fatalf("the scan would be empty: %d codes, %d tokens, %d states, nonces and cookies", codes, tokens, len(extra))
	}
	for _, e := range events {
		fields := string(e.Kind) + "\x00" + e.Reason + "\x00" + e.UserID
		for s, what := range all {
			if strings.Contains(fields, s) {
				t.Errorf("event %+v holds %s", e, what)
			}
		}
		if e.Reason != "" && !slices.Contains(reasons, e.Reason) {
			t.Errorf("event %+v: reason %q is not in the documented set", e, e.Reason)
		}
	}
}

// saveFailingStore is a working gorilla store whose saves fail on demand.
type saveFailingStore struct {
	*sessions.FilesystemStore
	fail atomic.Bool
}

func (s *saveFailingStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if s.fail.Load() {
		return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	return s.FilesystemStore.Save(r, w, sess)
}

// An idle-timeout slide that the store cannot write lets the request
// through and reports a store error, after the response.
func TestEventsStoreErrorOnIdleSlide(t *testing.T) {
	t.Parallel()
	store := &saveFailingStore{FilesystemStore: sessions.NewFilesystemStore(t.TempDir(), securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32))}
	ra := newEventRefreshApp(t, nil, func(c *pipaauth.Config) {
		c.SessionStore = store
		c.IdleTimeout = time.Hour
	})
	ra.mux.Handle("/private", ra.auth.RequireLogin(text("private")))
	alice := ra.provider.Subject(clientID, "alice")
	checkEvents(t, ra.events.take(), want{pipaauth.EventLogin, "", alice, true})
	store.fail.Store(true)
	ra.offset.Add(int64(2 * time.Minute)) // the slide is due
	if code, body := ra.get(t, "/private"); code != http.StatusOK || body != "private" {
		t.Fatalf("GET /private with the slide failing: %d %q, want 200", code, body)
	}
	checkEvents(t, ra.events.take(), want{pipaauth.EventStoreError, pipaauth.ReasonSessionStore, alice, false})
}

// benchAuth returns an Auth (edited by edit) and the session cookie of
// alice, logged in through the real flow.
func benchAuth(b *testing.B, provider *pipatest.Server, edit func(*pipaauth.Config)) (*pipaauth.Auth, *http.Cookie) {
	b.Helper()
	pa := newTestApp(b, provider, edit)
	pa.mux.Handle("/login", pa.auth.LoginHandler())
	pa.mux.Handle("/callback", pa.auth.CallbackHandler())
	pa.mux.Handle("/{$}", text("home"))
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(pa.srv.URL + "/login")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(pa.srv.URL)
	for _, c := range jar.Cookies(u) {
		if c.Name == plainCookieName {
			return pa.auth, c
		}
	}
	b.Fatalf("no session cookie after the login (status %d)", resp.StatusCode)
	return nil, nil
}

// BenchmarkRequireLoginOnEvent measures a logged-in request through the
// guard with OnEvent nil and set, in one run: a request that passes the
// guard reports no event, so both should cost the same.
func BenchmarkRequireLoginOnEvent(b *testing.B) {
	provider := pipatest.NewServer()
	b.Cleanup(provider.Close)
	var calls atomic.Int64
	for _, tt := range []struct {
		name string
		edit func(*pipaauth.Config)
	}{
		{"nil", nil},
		{"set", func(c *pipaauth.Config) {
			c.OnEvent = func(context.Context, pipaauth.Event) { calls.Add(1) }
		}},
	} {
		auth, cookie := benchAuth(b, provider, tt.edit)
		b.Run(tt.name, func(b *testing.B) {
			h := auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				w.Write(benchBody)
			}))
			r := httptest.NewRequest("GET", "/private", nil)
			r.Header.Set("Cookie", cookie.Name+"="+cookie.Value)
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, r)
			}
			if w.code != http.StatusOK {
				b.Fatalf("last request: status %d, want 200 (Location %q)", w.code, w.h.Get("Location"))
			}
		})
	}
	if n := calls.Load(); n != 1 { // the login
		b.Errorf("OnEvent called %d times, want 1 (the login): requests that pass the guard report nothing", n)
	}
}
