package pipaauth_test

// Back-channel logout over real HTTP: the harness's provider signs logout
// tokens (pipatest.LogoutToken), an application server mounts
// BackChannelLogoutHandler, and a fake revoker (plugged in through
// pipaauth.SetRevoker) records what would end. Every logout token is
// registered as a secret, so the harness fails a test whose log holds one.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// fakeRevoker records revocations and remembers keys in memory.
type fakeRevoker struct {
	mu             sync.Mutex
	remembered     map[string]time.Duration
	sids, subs     []string
	failRemember   error
	failRevoke     error
	rememberCalls  int
	revokeReturned int
}

func newFakeRevoker() *fakeRevoker {
	return &fakeRevoker{remembered: map[string]time.Duration{}, revokeReturned: 1}
}

func (f *fakeRevoker) CanRevoke() bool { return true }

func (f *fakeRevoker) RevokeSID(_ context.Context, sid string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRevoke != nil {
		return 0, f.failRevoke
	}
	f.sids = append(f.sids, sid)
	return f.revokeReturned, nil
}

func (f *fakeRevoker) RevokeSubject(_ context.Context, sub string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRevoke != nil {
		return 0, f.failRevoke
	}
	f.subs = append(f.subs, sub)
	return f.revokeReturned, nil
}

func (f *fakeRevoker) Remember(_ context.Context, key string, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rememberCalls++
	if f.failRemember != nil {
		return false, f.failRemember
	}
	if _, seen := f.remembered[key]; seen {
		return false, nil
	}
	f.remembered[key] = ttl
	return true, nil
}

func (f *fakeRevoker) Forget(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.remembered, key)
	return nil
}

// reset forgets everything recorded.
func (f *fakeRevoker) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remembered, f.sids, f.subs, f.rememberCalls = map[string]time.Duration{}, nil, nil, 0
}

// revoked returns the sids and subs revoked so far.
func (f *fakeRevoker) revoked() (sids, subs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sids), slices.Clone(f.subs)
}

// bcl is an application server with only BackChannelLogoutHandler mounted,
// on the Auth of a harness.
type bcl struct {
	h   *harness
	rev *fakeRevoker // nil: the Auth's own session Manager
	url string
}

func newBCL(t *testing.T, fake bool, s setup) *bcl {
	t.Helper()
	h := newHarness(t, s)
	b := &bcl{h: h}
	if fake {
		b.rev = newFakeRevoker()
		pipaauth.SetRevoker(h.app.auth, b.rev)
	}
	srv := httptest.NewServer(h.app.auth.BackChannelLogoutHandler())
	t.Cleanup(srv.Close)
	b.url = srv.URL + "/backchannel-logout"
	return b
}

// token signs a logout token for the harness's client and registers it as a
// secret.
func (b *bcl) token(opts pipatest.LogoutTokenOptions) string {
	tok := b.h.provider.LogoutToken(clientID, opts)
	b.h.secrets.addToken(tok)
	return tok
}

// post sends body with contentType (none when "") and returns the response,
// checked for leaks.
func (b *bcl) post(t *testing.T, method, contentType, body string) *response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: string(data)}
	b.h.checkResponse(t.Errorf, method, b.url, r)
	return r
}

// send posts one logout_token as the provider does.
func (b *bcl) send(t *testing.T, tok string) *response {
	t.Helper()
	return b.post(t, http.MethodPost, "application/x-www-form-urlencoded", url.Values{"logout_token": {tok}}.Encode())
}

// wantRefusal checks a refusal's status and JSON body.
func wantRefusal(t *testing.T, r *response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("body %q (Content-Type %q), want JSON: %v", r.body, r.header.Get("Content-Type"), err)
	}
	if body.Error != code || body.Description == "" {
		t.Errorf("error %q, description %q; want error %q and a description", body.Error, body.Description, code)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

// wantNothingRevoked checks that the fake revoked nothing.
func (b *bcl) wantNothingRevoked(t *testing.T) {
	t.Helper()
	if sids, subs := b.rev.revoked(); len(sids)+len(subs) != 0 {
		t.Errorf("revoked sids %q, subs %q; want nothing", sids, subs)
	}
}

// unsigned returns a token with alg none and the given claims.
func unsigned(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "none", "typ": "logout+jwt"}) + "." + enc(claims) + "."
}

func TestBackChannelLogoutRefusesInvalidTokens(t *testing.T) {
	b := newBCL(t, true, setup{plainHTTP: true})
	now := time.Now()
	sub := b.h.subject("alice")
	hook := func(f func(c map[string]any)) pipatest.LogoutTokenOptions {
		return pipatest.LogoutTokenOptions{ClaimsHook: f}
	}
	tests := []struct {
		name string
		tok  func() string
		// reason is a piece of the error_description.
		reason string
	}{
		{"not a JWT", func() string { return "not-a-jwt" }, "signature"},
		{"alg none", func() string {
			return unsigned(map[string]any{"iss": b.h.provider.URL, "aud": clientID, "iat": now.Unix(), "jti": "j-none", "sub": sub,
				"events": map[string]any{pipatest.BackChannelLogoutEvent: map[string]any{}}})
		}, "signature"},
		{"key not in the JWKS", func() string { return b.token(pipatest.LogoutTokenOptions{WrongKey: true}) }, "signature"},
		{"another issuer", func() string { return b.token(pipatest.LogoutTokenOptions{Issuer: "https://not-pipa.example"}) }, "issuer"},
		{"another audience", func() string { return b.token(pipatest.LogoutTokenOptions{Audience: []string{"other-client"}}) }, "audience"},
		{"an untrusted extra audience", func() string {
			return b.token(pipatest.LogoutTokenOptions{Audience: []string{clientID, "other-client"}})
		}, "another audience"},
		{"azp of another client", func() string { return b.token(hook(func(c map[string]any) { c["azp"] = "other-client" })) }, "azp"},
		{"azp a number", func() string { return b.token(hook(func(c map[string]any) { c["azp"] = 7 })) }, "malformed"},
		{"typ at+jwt", func() string { return b.token(pipatest.LogoutTokenOptions{Type: "at+jwt"}) }, "typ"},
		{"typ secevent+jwt", func() string { return b.token(pipatest.LogoutTokenOptions{Type: "secevent+jwt"}) }, "typ"},
		{"no iat", func() string { return b.token(pipatest.LogoutTokenOptions{OmitIssuedAt: true}) }, "no iat"},
		{"iat in the future", func() string {
			return b.token(pipatest.LogoutTokenOptions{IssuedAt: now.Add(pipaauth.DefaultClockSkew + time.Minute)})
		}, "future"},
		{"iat too old, exp not passed", func() string {
			return b.token(pipatest.LogoutTokenOptions{IssuedAt: now.Add(-pipaauth.LogoutTokenMaxAge - time.Minute), Expiry: now.Add(time.Hour)})
		}, "too old"},
		{"iat too old, no exp", func() string {
			return b.token(pipatest.LogoutTokenOptions{IssuedAt: now.Add(-pipaauth.LogoutTokenMaxAge - time.Minute), OmitExpiry: true})
		}, "too old"},
		{"exp passed beyond the clock skew", func() string {
			return b.token(pipatest.LogoutTokenOptions{IssuedAt: now.Add(-2 * time.Minute), Expiry: now.Add(-pipaauth.DefaultClockSkew - 10*time.Second)})
		}, "expired"},
		{"no events", func() string { return b.token(pipatest.LogoutTokenOptions{OmitEvents: true}) }, "events"},
		{"events null", func() string { return b.token(hook(func(c map[string]any) { c["events"] = nil })) }, "events"},
		{"events a string", func() string { return b.token(pipatest.LogoutTokenOptions{Events: pipatest.BackChannelLogoutEvent}) }, "events"},
		{"events an array", func() string {
			return b.token(pipatest.LogoutTokenOptions{Events: []any{pipatest.BackChannelLogoutEvent}})
		}, "events"},
		{"events without the logout member", func() string {
			return b.token(pipatest.LogoutTokenOptions{Events: map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}})
		}, "events"},
		{"logout event a string", func() string {
			return b.token(pipatest.LogoutTokenOptions{Events: map[string]any{pipatest.BackChannelLogoutEvent: "yes"}})
		}, "events"},
		{"logout event null", func() string {
			return b.token(pipatest.LogoutTokenOptions{Events: map[string]any{pipatest.BackChannelLogoutEvent: nil}})
		}, "events"},
		{"nonce", func() string { return b.token(pipatest.LogoutTokenOptions{Nonce: "n-1"}) }, "nonce"},
		{"nonce null", func() string { return b.token(hook(func(c map[string]any) { c["nonce"] = nil })) }, "nonce"},
		{"no jti", func() string { return b.token(pipatest.LogoutTokenOptions{OmitJTI: true}) }, "jti"},
		{"empty jti", func() string { return b.token(hook(func(c map[string]any) { c["jti"] = "" })) }, "jti"},
		{"jti a number", func() string { return b.token(hook(func(c map[string]any) { c["jti"] = 42 })) }, "jti"},
		{"neither sub nor sid", func() string { return b.token(pipatest.LogoutTokenOptions{OmitSubject: true}) }, "neither sub nor sid"},
		{"empty sub and sid", func() string {
			return b.token(hook(func(c map[string]any) { c["sub"], c["sid"] = "", "" }))
		}, "neither sub nor sid"},
		{"sid a number", func() string { return b.token(hook(func(c map[string]any) { c["sid"] = 7 })) }, "sid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.rev.reset()
			r := b.send(t, tt.tok())
			wantRefusal(t, r, http.StatusBadRequest, "invalid_request")
			if !strings.Contains(r.body, tt.reason) {
				t.Errorf("body %s does not name %q", r.body, tt.reason)
			}
			b.wantNothingRevoked(t)
			b.rev.mu.Lock()
			calls := b.rev.rememberCalls
			b.rev.mu.Unlock()
			if calls != 0 {
				t.Errorf("an invalid token's jti was remembered (%d calls)", calls)
			}
		})
	}
	if !strings.Contains(b.h.logs.String(), "back-channel logout refused") {
		t.Errorf("no refusal logged:\n%s", b.h.logs.String())
	}
}

func TestBackChannelLogoutEndsSessions(t *testing.T) {
	alice := func(b *bcl) string { return b.h.subject("alice") }
	tests := []struct {
		name     string
		opts     pipatest.LogoutTokenOptions
		wantSIDs []string
		wantSubs func(b *bcl) []string
	}{
		{"by sub", pipatest.LogoutTokenOptions{}, nil, func(b *bcl) []string { return []string{alice(b)} }},
		{"by sid", pipatest.LogoutTokenOptions{OmitSubject: true, SID: "op-session-1"}, []string{"op-session-1"}, nil},
		// sid names the provider's session; sub only names its user.
		{"by sid and sub", pipatest.LogoutTokenOptions{SID: "op-session-2"}, []string{"op-session-2"}, nil},
		{"typ JWT", pipatest.LogoutTokenOptions{Type: "JWT"}, nil, func(b *bcl) []string { return []string{alice(b)} }},
		{"typ application/logout+jwt", pipatest.LogoutTokenOptions{Type: "application/Logout+JWT"}, nil, func(b *bcl) []string { return []string{alice(b)} }},
		{"no typ", pipatest.LogoutTokenOptions{OmitType: true}, nil, func(b *bcl) []string { return []string{alice(b)} }},
		{"no exp (Back-Channel Logout 2022)", pipatest.LogoutTokenOptions{OmitExpiry: true}, nil, func(b *bcl) []string { return []string{alice(b)} }},
		{"aud as an array", pipatest.LogoutTokenOptions{Audience: []string{clientID}, User: "bob"}, nil, func(b *bcl) []string { return []string{b.h.subject("bob")} }},
		{"iat within the clock skew ahead", pipatest.LogoutTokenOptions{IssuedAt: time.Now().Add(pipaauth.DefaultClockSkew / 2)}, nil, func(b *bcl) []string { return []string{alice(b)} }},
		{"unknown claims ignored", pipatest.LogoutTokenOptions{ClaimsHook: func(c map[string]any) {
			c["trace_id"] = "t-1"
			c["events"].(map[string]any)["http://schemas.openid.net/event/other"] = "x"
		}}, nil, func(b *bcl) []string { return []string{alice(b)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBCL(t, true, setup{plainHTTP: true})
			r := b.send(t, b.token(tt.opts))
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", r.status, r.body)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			var wantSubs []string
			if tt.wantSubs != nil {
				wantSubs = tt.wantSubs(b)
			}
			if sids, subs := b.rev.revoked(); !slices.Equal(sids, tt.wantSIDs) || !slices.Equal(subs, wantSubs) {
				t.Errorf("revoked sids %q, subs %q; want sids %q, subs %q", sids, subs, tt.wantSIDs, wantSubs)
			}
			b.rev.mu.Lock()
			defer b.rev.mu.Unlock()
			// The jti, and a logout by sid (or sub) marks the sid (or sub)
			// revoked, so that a login with it finishing meanwhile ends
			// itself.
			want := 1 + len(tt.wantSIDs) + len(wantSubs)
			if len(b.rev.remembered) != want {
				t.Fatalf("remembered %v, want the one jti, %d sid and %d sub", b.rev.remembered, len(tt.wantSIDs), len(wantSubs))
			}
			for key, ttl := range b.rev.remembered {
				if strings.Contains(key, "jti") && len(key) > 80 || ttl <= 0 || ttl > pipaauth.LogoutTokenMaxAge+2*pipaauth.DefaultClockSkew {
					t.Errorf("remembered %q for %v, want a bounded key for at most %v", key, ttl, pipaauth.LogoutTokenMaxAge+2*pipaauth.DefaultClockSkew)
				}
			}
		})
	}
}

func TestBackChannelLogoutReplay(t *testing.T) {
	b := newBCL(t, true, setup{plainHTTP: true})
	tok := b.token(pipatest.LogoutTokenOptions{SID: "s-1", JTI: "jti-replayed"})
	if r := b.send(t, tok); r.status != http.StatusOK {
		t.Fatalf("first delivery: %d %s", r.status, r.body)
	}
	wantRefusal(t, b.send(t, tok), http.StatusBadRequest, "invalid_request")
	// Another token with the same jti is a replay too.
	again := b.token(pipatest.LogoutTokenOptions{User: "bob", JTI: "jti-replayed"})
	r := b.send(t, again)
	wantRefusal(t, r, http.StatusBadRequest, "invalid_request")
	if !strings.Contains(r.body, "already used") {
		t.Errorf("body %s does not say the token was already used", r.body)
	}
	if sids, subs := b.rev.revoked(); !slices.Equal(sids, []string{"s-1"}) || len(subs) != 0 {
		t.Errorf("revoked sids %q, subs %q; want only the first delivery's sid", sids, subs)
	}
	// A fresh jti works.
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{SID: "s-1"})); r.status != http.StatusOK {
		t.Errorf("a fresh token after a replay: %d %s", r.status, r.body)
	}
}

func TestBackChannelLogoutAge(t *testing.T) {
	// The application's clock moves; the provider's stays real.
	b := newBCL(t, true, setup{plainHTTP: true})
	tok := b.token(pipatest.LogoutTokenOptions{Expiry: time.Now().Add(time.Hour)})
	b.h.clock.Advance(pipaauth.LogoutTokenMaxAge + time.Second)
	wantRefusal(t, b.send(t, tok), http.StatusBadRequest, "invalid_request")
	b.wantNothingRevoked(t)
}

func TestBackChannelLogoutStoreFailures(t *testing.T) {
	down := errors.New("redis: connection refused")
	t.Run("remember", func(t *testing.T) {
		b := newBCL(t, true, setup{plainHTTP: true})
		b.rev.failRemember = down
		wantRefusal(t, b.send(t, b.token(pipatest.LogoutTokenOptions{SID: "s"})), http.StatusServiceUnavailable, "temporarily_unavailable")
		b.wantNothingRevoked(t)
	})
	t.Run("revoke", func(t *testing.T) {
		b := newBCL(t, true, setup{plainHTTP: true})
		b.rev.failRevoke = down
		tok := b.token(pipatest.LogoutTokenOptions{})
		r := b.send(t, tok)
		wantRefusal(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
		// The provider retries with the same token once the store is back:
		// not a replay, since nothing was ended.
		b.rev.mu.Lock()
		b.rev.failRevoke = nil
		b.rev.mu.Unlock()
		if r := b.send(t, tok); r.status != http.StatusOK {
			t.Errorf("the retry of a token whose revocation failed: %d %s, want 200", r.status, r.body)
		}
		if strings.Contains(r.body, "redis") {
			t.Errorf("the store's error reached the body: %s", r.body)
		}
		if !strings.Contains(b.h.logs.String(), "connection refused") {
			t.Errorf("the store's error is not logged:\n%s", b.h.logs.String())
		}
	})
}

func TestBackChannelLogoutRequests(t *testing.T) {
	b := newBCL(t, true, setup{plainHTTP: true})
	form := "application/x-www-form-urlencoded"
	valid := func() string { return url.Values{"logout_token": {b.token(pipatest.LogoutTokenOptions{})}}.Encode() }
	const exactlyOne = "exactly one non-empty logout_token"
	tests := []struct {
		name, method, contentType string
		body                      func() string
		status                    int
		reason                    string // a piece of the error_description
	}{
		{"GET", http.MethodGet, "", func() string { return "" }, http.StatusMethodNotAllowed, "POST"},
		{"PUT", http.MethodPut, form, valid, http.StatusMethodNotAllowed, "POST"},
		{"no content type", http.MethodPost, "", valid, http.StatusBadRequest, form},
		{"JSON", http.MethodPost, "application/json", func() string { return `{"logout_token":"x"}` }, http.StatusBadRequest, form},
		{"multipart", http.MethodPost, "multipart/form-data; boundary=x", valid, http.StatusBadRequest, form},
		{"no logout_token", http.MethodPost, form, func() string { return "token=x" }, http.StatusBadRequest, exactlyOne},
		{"empty logout_token", http.MethodPost, form, func() string { return "logout_token=" }, http.StatusBadRequest, exactlyOne},
		{"two logout_tokens", http.MethodPost, form, func() string {
			t1, t2 := b.token(pipatest.LogoutTokenOptions{}), b.token(pipatest.LogoutTokenOptions{})
			return url.Values{"logout_token": {t1, t2}}.Encode()
		}, http.StatusBadRequest, exactlyOne},
		{"malformed form", http.MethodPost, form, func() string { return "logout_token=%zz" }, http.StatusBadRequest, "malformed"},
		{"oversized body", http.MethodPost, form, func() string {
			return valid() + "&padding=" + strings.Repeat("a", pipaauth.MaxLogoutRequestBytes)
		}, http.StatusRequestEntityTooLarge, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.post(t, tt.method, tt.contentType, tt.body())
			wantRefusal(t, r, tt.status, "invalid_request")
			if !strings.Contains(r.body, tt.reason) {
				t.Errorf("body %s does not name %q", r.body, tt.reason)
			}
			if tt.status == http.StatusMethodNotAllowed && r.header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", r.header.Get("Allow"))
			}
			b.wantNothingRevoked(t)
		})
	}
	// A token in the query string is not read.
	tok := b.token(pipatest.LogoutTokenOptions{})
	old := b.url
	b.url += "?logout_token=" + url.QueryEscape(tok)
	wantRefusal(t, b.post(t, http.MethodPost, form, "x=1"), http.StatusBadRequest, "invalid_request")
	b.url = old
	b.wantNothingRevoked(t)
}

// TestBackChannelLogoutUnavailable runs the real session Manager: cookie
// sessions and plain gorilla stores cannot end sessions by sid or sub.
func TestBackChannelLogoutUnavailable(t *testing.T) {
	for _, mode := range []string{"cookie", "gorilla store"} {
		t.Run(mode, func(t *testing.T) {
			b := newBCL(t, false, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) {
				if mode != "cookie" {
					cfg.SessionStore = sessions.NewCookieStore(newKeys()...)
				}
			}})
			wantRefusal(t, b.send(t, b.token(pipatest.LogoutTokenOptions{SID: "s"})), http.StatusNotImplemented, "server_error")
			if r := b.post(t, http.MethodGet, "", ""); r.status != http.StatusMethodNotAllowed {
				t.Errorf("GET: %d, want 405 before 501", r.status)
			}
			logs := b.h.logs.String()
			if n := strings.Count(logs, "back-channel logout is not available"); n != 1 {
				t.Errorf("the unavailability was logged %d times, want once (when the handler was mounted):\n%s", n, logs)
			}
		})
	}
}

func TestBackChannelDiscoveryLogged(t *testing.T) {
	for _, announced := range []bool{true, false} {
		t.Run(fmt.Sprint(announced), func(t *testing.T) {
			s := setup{plainHTTP: true}
			if !announced {
				s.discovery = func(doc map[string]any) {
					delete(doc, "backchannel_logout_supported")
					delete(doc, "backchannel_logout_session_supported")
				}
			}
			b := newBCL(t, false, s)
			logs := b.h.logs.String()
			for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported"} {
				if want := fmt.Sprintf("%s=%v", k, announced); !strings.Contains(logs, want) {
					t.Errorf("the log lacks %s:\n%s", want, logs)
				}
			}
		})
	}
}

// A back-channel logout is a logout event (its sub, or "" for a logout by
// sid alone); a store failure is a session_store_error; a refused token
// reports nothing.
func TestBackChannelLogoutEvents(t *testing.T) {
	t.Parallel()
	log := &eventLog{}
	b := newBCL(t, true, setup{plainHTTP: true, configure: func(c *pipaauth.Config) { c.OnEvent = log.record }})
	log.take() // nothing so far
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{})); r.status != http.StatusOK {
		t.Fatalf("logout by sub: %d", r.status)
	}
	checkEvents(t, log.take(), want{pipaauth.EventLogout, "", b.h.subject("alice"), true})
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{OmitSubject: true, SID: "op-1"})); r.status != http.StatusOK {
		t.Fatalf("logout by sid: %d", r.status)
	}
	checkEvents(t, log.take(), want{pipaauth.EventLogout, "", "", true})
	b.send(t, b.token(pipatest.LogoutTokenOptions{OmitEvents: true}))
	checkEvents(t, log.take())
	b.rev.failRevoke = errors.New("redis: connection refused")
	b.send(t, b.token(pipatest.LogoutTokenOptions{}))
	checkEvents(t, log.take(), want{pipaauth.EventStoreError, pipaauth.ReasonSessionStore, b.h.subject("alice"), false})
}

// A JWS in JSON serialization is not a JWT (RFC 7519 section 7.2), although
// go-oidc would verify it (found by the security review).
func TestBackChannelLogoutRefusesJSONSerialization(t *testing.T) {
	t.Parallel()
	b := newBCL(t, true, setup{plainHTTP: true})
	parts := strings.Split(b.token(pipatest.LogoutTokenOptions{}), ".")
	tok := `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`
	b.h.secrets.addToken(tok)
	wantRefusal(t, b.send(t, tok), http.StatusBadRequest, "invalid_request")
	b.wantNothingRevoked(t)
}
