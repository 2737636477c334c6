package pipaauth_test

// Full-flow tests of the callback's refusals (see harness_test.go for the
// harness): provider errors, bad state, malformed queries, token endpoint
// failures, refused ID tokens and user ids, and the log lines they leave.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestFailedCallbackIsSingleUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	auth := b.startLogin("/private")
	h.setBehavior(pipatest.Behavior{TokenStatus: http.StatusInternalServerError})
	if r := b.finish(auth); r.status != http.StatusBadGateway {
		t.Fatalf("callback with a failing token endpoint: %d, want 502", r.status)
	}
	h.app.takeErrors()
	// The same authorization request again: the same state, a fresh and valid code.
	h.setBehavior(pipatest.Behavior{})
	cb := b.authorize(auth)
	before := h.provider.TokenRequests()
	expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidState, before)
	b.mustBeLoggedOut()
}

func TestCallbackProviderError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		code   string
		status int
		shown  string // what the page shows; "" for nothing to check
	}{
		{"access_denied", http.StatusForbidden, "access_denied"},
		{"server_error", http.StatusBadRequest, "server_error"},
		{"temporarily_unavailable", http.StatusBadRequest, "temporarily_unavailable"},
		{"login_required", http.StatusBadRequest, "login_required"},
		{"<script>alert(1)</script>", http.StatusBadRequest, "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{`"><img src=x onerror=alert(1)>`, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			b := h.app.newBrowser(t)
			auth := b.startLogin("/private")
			h.setBehavior(pipatest.Behavior{AuthorizeError: tt.code})
			cb := b.authorize(auth)
			h.setBehavior(pipatest.Behavior{})
			if got := query(t, cb).Get("error"); got != tt.code {
				t.Fatalf("provider sent error %q, want %q", got, tt.code)
			}
			before := h.provider.TokenRequests()
			r := b.get(cb)
			if r.status != tt.status {
				t.Errorf("callback status = %d, want %d\n%s", r.status, tt.status, r.body)
			}
			if tt.shown != "" && !strings.Contains(r.body, tt.shown) {
				t.Errorf("the page does not show %q:\n%s", tt.shown, r.body)
			}
			for _, raw := range []string{"<script", "<img"} {
				if strings.Contains(r.body, raw) {
					t.Errorf("the page contains %q unescaped:\n%s", raw, r.body)
				}
			}
			if n := h.provider.TokenRequests(); n != before {
				t.Errorf("token requests = %d, want %d", n, before)
			}
			errs := h.app.takeErrors()
			var pe *pipaauth.ProviderError
			if len(errs) != 1 {
				t.Errorf("ErrorHandler got %v, want one error", errs)
			} else if tt.shown != "" && (!errors.As(errs[0], &pe) || pe.Code != tt.code) {
				t.Errorf("ErrorHandler got %v, want a *ProviderError with code %q", errs[0], tt.code)
			}
			b.mustBeLoggedOut()
			if tt.shown == "" {
				return // refused before the state was looked at
			}
			// The attempt is spent: a valid code for the same state is refused.
			cb = b.authorize(auth)
			before = h.provider.TokenRequests()
			expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidState, before)
		})
	}
}

func TestCallbackRejectsBadState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		name string
		edit func(q url.Values)
	}{
		{"missing", func(q url.Values) { q.Del("state") }},
		{"empty", func(q url.Values) { q.Set("state", "") }},
		{"unknown", func(q url.Values) { q.Set("state", rand.Text()) }},
		{"tampered", func(q url.Values) {
			s := []byte(q.Get("state"))
			if s[0] == 'A' {
				s[0] = 'B'
			} else {
				s[0] = 'A'
			}
			q.Set("state", string(s))
		}},
		{"truncated", func(q url.Values) { q.Set("state", q.Get("state")[:21]) }},
		{"extended", func(q url.Values) { q.Set("state", q.Get("state")+"A") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			cb := withQuery(t, b.authorize(b.startLogin("/private")), tt.edit)
			before := h.provider.TokenRequests()
			r := b.get(cb)
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidState, before)
			for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			b.mustBeLoggedOut()
		})
	}
}

func TestCallbackWhenLoggedIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	cb := b.authorize(b.startLogin("/private"))
	if r := b.get(cb); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", r.status)
	}
	alice := b.mustUser()
	h.provider.SetUser(pipatest.User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: true})

	// Replaying the exact callback URL of the login keeps the session.
	before := h.provider.TokenRequests()
	r := b.get(cb)
	if r.status != http.StatusSeeOther || r.location() != "/" {
		t.Errorf("replayed callback: %d to %q, want 303 to /", r.status, r.location())
	}
	if n := h.provider.TokenRequests(); n != before {
		t.Errorf("the replay made %d token requests, want none", n-before)
	}
	if u := b.mustUser(); u != alice {
		t.Errorf("after the replay the user is %+v, want %+v", u, alice)
	}

	// An unknown state with a valid code (bob's) does the same.
	for _, edit := range []func(q url.Values){
		func(q url.Values) { q.Set("state", rand.Text()) },
		func(q url.Values) { q.Del("state") },
	} {
		cb2 := withQuery(t, b.authorize(b.startLogin("/login")), edit)
		before = h.provider.TokenRequests()
		r = b.get(cb2)
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("callback with an unknown state while logged in: %d to %q, want 303 to /", r.status, r.location())
		}
		if n := h.provider.TokenRequests(); n != before {
			t.Errorf("the unknown state made %d token requests, want none", n-before)
		}
		if u := b.mustUser(); u != alice {
			t.Errorf("after an unknown state the user is %+v, want %+v", u, alice)
		}
	}
	if errs := h.app.takeErrors(); len(errs) != 0 {
		t.Errorf("ErrorHandler called with %v", errs)
	}
}

func TestCallbackRejectsMalformedQuery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	tests := []struct {
		name string
		edit func(t *testing.T, raw string) string // edits the raw callback URL
	}{
		{"repeated state", func(t *testing.T, raw string) string {
			return raw + "&state=" + url.QueryEscape(query(t, raw).Get("state"))
		}},
		{"repeated code", func(t *testing.T, raw string) string {
			return raw + "&code=" + url.QueryEscape(query(t, raw).Get("code"))
		}},
		{"repeated iss", func(t *testing.T, raw string) string {
			return raw + "&iss=" + url.QueryEscape(query(t, raw).Get("iss"))
		}},
		{"other iss", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("iss", "https://evil.example") })
		}},
		{"iss with a trailing slash", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("iss", q.Get("iss")+"/") })
		}},
		{"iss over http", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("iss", strings.Replace(q.Get("iss"), "https:", "http:", 1)) })
		}},
		{"missing iss (promised by discovery)", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Del("iss") })
		}},
		{"missing code", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Del("code") })
		}},
		{"empty code", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("code", "") })
		}},
		{"code and error", func(t *testing.T, raw string) string {
			return withQuery(t, raw, func(q url.Values) { q.Set("error", "access_denied") })
		}},
		{"bad escape", func(t *testing.T, raw string) string { return raw + "&x=%zz" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			cb := tt.edit(t, b.authorize(b.startLogin("/private")))
			before := h.provider.TokenRequests()
			expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidCallback, before)
			b.mustBeLoggedOut()
		})
	}
}

func TestCallbackWithoutIssWhenNotPromised(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{discovery: func(doc map[string]any) {
		delete(doc, "authorization_response_iss_parameter_supported")
	}})
	b := h.app.newBrowser(t)
	cb := withQuery(t, b.authorize(b.startLogin("/private")), func(q url.Values) { q.Del("iss") })
	if r := b.get(cb); r.status != http.StatusSeeOther {
		t.Errorf("callback without iss from a provider that does not promise one: %d, want 303; errors %v", r.status, h.app.takeErrors())
	}
	// A wrong iss is still refused.
	cb = withQuery(t, b.authorize(b.startLogin("/login")), func(q url.Values) { q.Set("iss", "https://evil.example") })
	before := h.provider.TokenRequests()
	expectFailure(t, h, b.get(cb), http.StatusBadRequest, pipaauth.ErrInvalidCallback, before)
}

func TestCallbackMethod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	cb := b.authorize(b.startLogin("/private"))
	before := h.provider.TokenRequests()
	r := b.post(cb)
	expectFailure(t, h, r, http.StatusMethodNotAllowed, pipaauth.ErrMethod, before)
	if got := r.header.Get("Allow"); got != http.MethodGet {
		t.Errorf("Allow = %q, want GET", got)
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		behavior pipatest.Behavior
		timeout  time.Duration
		status   int
	}{
		{"500", pipatest.Behavior{TokenStatus: http.StatusInternalServerError}, 0, http.StatusBadGateway},
		{"503", pipatest.Behavior{TokenStatus: http.StatusServiceUnavailable}, 0, http.StatusBadGateway},
		{"400 invalid_grant", pipatest.Behavior{TokenStatus: http.StatusBadRequest}, 0, http.StatusBadRequest},
		{"401", pipatest.Behavior{TokenStatus: http.StatusUnauthorized}, 0, http.StatusBadRequest},
		{"slow", pipatest.Behavior{TokenDelay: 5 * time.Second}, 300 * time.Millisecond, http.StatusGatewayTimeout},
		{"no access_token", pipatest.Behavior{TokenHook: func(resp map[string]any) { clear(resp) }}, 0, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.ExchangeTimeout = tt.timeout }})
			b := h.app.newBrowser(t)
			cb := b.authorize(b.startLogin("/private"))
			h.setBehavior(tt.behavior)
			before := h.provider.TokenRequests()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			r := b.do(ctx, http.MethodGet, cb)
			expectFailure(t, h, r, tt.status, pipaauth.ErrExchange, -1)
			if n := h.provider.TokenRequests() - before; n != 1 {
				t.Errorf("the callback made %d token requests, want exactly 1 (a code is never sent twice)", n)
			}
			b.mustBeLoggedOut()
		})
	}
}

func TestIDTokenRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	long := strings.Repeat("s", 256)
	tests := []struct {
		name string
		b    pipatest.Behavior
	}{
		{"WrongNonce", pipatest.Behavior{WrongNonce: true}},
		{"WrongIssuer", pipatest.Behavior{WrongIssuer: true}},
		{"WrongAudience", pipatest.Behavior{WrongAudience: true}},
		{"ExtraAudience", pipatest.Behavior{ExtraAudience: true}},
		{"WrongAZP", pipatest.Behavior{WrongAZP: true}},
		{"Expired", pipatest.Behavior{Expired: true}},
		{"IssuedInFuture", pipatest.Behavior{IssuedInFuture: true}},
		{"OmitSubject", pipatest.Behavior{OmitSubject: true}},
		{"OmitSubject without user_id", pipatest.Behavior{OmitSubject: true, OmitUserID: true}},
		{"OmitIssuedAt", pipatest.Behavior{OmitIssuedAt: true}},
		{"OmitNonce", pipatest.Behavior{OmitNonce: true}},
		{"OmitIDToken", pipatest.Behavior{OmitIDToken: true}},
		{"BadSignature", pipatest.Behavior{BadSignature: true}},
		{"BadAtHash", pipatest.Behavior{BadAtHash: true}},
		{"UserID differs from sub", pipatest.Behavior{UserID: "someone-else"}},
		{"UserID empty", pipatest.Behavior{UserID: ""}},
		{"UserID object", pipatest.Behavior{UserID: map[string]any{"id": "x"}}},
		{"token_type not Bearer", pipatest.Behavior{TokenHook: func(resp map[string]any) { resp["token_type"] = "mac" }}},
		{"sub too long", pipatest.Behavior{OmitUserID: true, ClaimsHook: func(c map[string]any) { c["sub"] = long }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			auth := b.startLogin("/private")
			h.setBehavior(tt.b)
			defer h.setBehavior(pipatest.Behavior{})
			r := b.finish(auth)
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
			b.mustBeLoggedOut()
		})
	}
	if _, tokens := h.secrets.counts(); tokens == 0 {
		t.Errorf("no token recorded: the leak checks would be vacuous")
	}
}

func TestLoginWithoutOpenIDScope(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.Scopes = []string{"email"} }})
	tests := []struct {
		name   string
		b      pipatest.Behavior
		wantID string // "" for refused
	}{
		{"subject string", pipatest.Behavior{}, "SUBJECT"},
		{"number", pipatest.Behavior{UserID: float64(12345)}, "12345"},
		{"zero", pipatest.Behavior{UserID: float64(0)}, "0"},
		{"largest exact number", pipatest.Behavior{UserID: float64(1<<53 - 1)}, "9007199254740991"},
		{"2^53", pipatest.Behavior{UserID: float64(1 << 53)}, ""},
		{"2^53+1 as a JSON number", pipatest.Behavior{UserID: json.Number("9007199254740993")}, ""},
		{"huge", pipatest.Behavior{UserID: json.Number("1e300")}, ""},
		{"fraction", pipatest.Behavior{UserID: 1.5}, ""},
		{"negative", pipatest.Behavior{UserID: float64(-1)}, ""},
		{"empty string", pipatest.Behavior{UserID: ""}, ""},
		{"boolean", pipatest.Behavior{UserID: true}, ""},
		{"absent", pipatest.Behavior{OmitUserID: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			auth := b.startLogin("/private")
			if got := query(t, auth).Get("scope"); got != "email" {
				t.Fatalf("scope = %q, want %q", got, "email")
			}
			h.setBehavior(tt.b)
			defer h.setBehavior(pipatest.Behavior{})
			r := b.finish(auth)
			if tt.wantID == "" {
				expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
				b.mustBeLoggedOut()
				return
			}
			if r.status != http.StatusSeeOther {
				t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
			}
			want := tt.wantID
			if want == "SUBJECT" {
				want = h.subject("alice")
			}
			if u := b.mustUser(); u.ID != want {
				t.Errorf("user id = %q, want %q", u.ID, want)
			}
		})
	}
}

func TestFailuresAreLoggedWithoutSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	failures := []struct {
		name     string
		behavior pipatest.Behavior
		edit     func(q url.Values)
	}{
		{"token endpoint 500", pipatest.Behavior{TokenStatus: 500}, nil},
		{"invalid_grant", pipatest.Behavior{TokenStatus: 400}, nil},
		{"wrong nonce", pipatest.Behavior{WrongNonce: true}, nil},
		{"bad signature", pipatest.Behavior{BadSignature: true}, nil},
		{"bad at_hash", pipatest.Behavior{BadAtHash: true}, nil},
		{"no id_token", pipatest.Behavior{OmitIDToken: true}, nil},
		{"wrong audience", pipatest.Behavior{WrongAudience: true}, nil},
		{"user_id mismatch", pipatest.Behavior{UserID: "someone-else"}, nil},
		{"access_denied", pipatest.Behavior{AuthorizeError: "access_denied"}, nil},
		{"wrong iss", pipatest.Behavior{}, func(q url.Values) { q.Set("iss", "https://evil.example") }},
		{"unknown state", pipatest.Behavior{}, func(q url.Values) { q.Set("state", rand.Text()) }},
		{"repeated code", pipatest.Behavior{}, func(q url.Values) { q["code"] = append(q["code"], q.Get("code")) }},
	}
	failed := func() int { return strings.Count(h.logs.String(), "login failed") }
	for _, f := range failures {
		b := h.app.newBrowser(t)
		auth := b.startLogin("/private")
		h.setBehavior(f.behavior)
		cb := b.authorize(auth)
		if f.edit != nil {
			cb = withQuery(t, cb, f.edit)
		}
		n := failed()
		r := b.get(cb)
		h.setBehavior(pipatest.Behavior{})
		if r.status < 400 {
			t.Errorf("%s: callback answered %d, want an error", f.name, r.status)
		}
		if got := failed(); got != n+1 {
			t.Errorf("%s: %d new \"login failed\" log lines, want 1", f.name, got-n)
		}
		last := h.logs.String()
		last = last[strings.LastIndex(last, "login failed"):]
		if i := strings.IndexByte(last, '\n'); i >= 0 {
			last = last[:i]
		}
		if !strings.Contains(last, "reason=") {
			t.Errorf("%s: the log line has no reason: %s", f.name, last)
		}
		h.app.takeErrors()
	}
	codes, tokens := h.secrets.counts()
	if codes == 0 || tokens == 0 {
		t.Fatalf("recorded %d codes and %d tokens: the leak checks would be vacuous", codes, tokens)
	}
	h.checkLogs()
}
