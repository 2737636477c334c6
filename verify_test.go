package pipaauth_test

// Full-flow tests of what a login verifies and records (issue 8): clock
// skew both ways, prompt=consent with offline_access, email from UserInfo,
// error texts for unreadable answers, auth_time, and the ID token kept in
// the cookie when it fits.

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func TestClockSkewBothWays(t *testing.T) {
	t.Parallel()
	short := func(c map[string]any) { c["exp"] = c["iat"].(int64) + 30 } // an ID token that lives 30 s
	tests := []struct {
		name  string
		ahead time.Duration // the application's clock minus PiPA's
		skew  time.Duration // Config.ClockSkew (0: default)
		hook  func(map[string]any)
		ok    bool
	}{
		{"in sync", 0, 0, short, true},
		{"45s ahead, 30s token", 45 * time.Second, 0, short, true},
		{"45s ahead, 10s skew", 45 * time.Second, 10 * time.Second, short, false},
		{"95s ahead, 30s token", 95 * time.Second, 0, short, false},
		{"45s behind: iat, nbf and auth_time ahead", -45 * time.Second, 0, func(c map[string]any) { c["nbf"] = c["iat"] }, true},
		{"95s behind", -95 * time.Second, 0, nil, false},
		{"nbf 2m ahead", 0, 0, func(c map[string]any) { c["nbf"] = c["iat"].(int64) + 120 }, false},
		{"nbf 30s ahead", 0, 0, func(c map[string]any) { c["nbf"] = c["iat"].(int64) + 30 }, true},
		{"auth_time 2m ahead", 0, 0, func(c map[string]any) { c["auth_time"] = c["iat"].(int64) + 120 }, false},
		{"no exp", 0, 0, func(c map[string]any) { delete(c, "exp") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.ClockSkew = tt.skew }})
			h.clock.Advance(tt.ahead)
			h.setBehavior(pipatest.Behavior{ClaimsHook: tt.hook})
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			if tt.ok {
				if r.status != http.StatusSeeOther {
					t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
				}
				b.mustUser()
				return
			}
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
		})
	}
}

func TestClockSkewConfig(t *testing.T) {
	t.Parallel()
	p := pipatest.NewServer()
	t.Cleanup(p.Close)
	cfg := pipaauth.Config{
		Issuer: p.URL, ClientID: clientID, ClientSecret: clientSecret, RedirectURL: "http://127.0.0.1/callback",
		SessionKeys: newKeys(), InsecureAllowHTTP: true, ClockSkew: -time.Second,
	}
	if _, err := pipaauth.New(t.Context(), cfg); !errors.Is(err, pipaauth.ErrConfig) || !strings.Contains(err.Error(), "ClockSkew") {
		t.Errorf("New with a negative ClockSkew: %v, want ErrConfig naming ClockSkew", err)
	}
}

func TestOfflineAccessAsksForConsent(t *testing.T) {
	t.Parallel()
	scopes := []string{"openid", "email", "offline_access"}
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) { cfg.Scopes = scopes }})
	if q := query(t, h.app.newBrowser(t).startLogin("/private")); q.Get("prompt") != "consent" {
		t.Errorf("authorize with offline_access: prompt %q, want consent", q.Get("prompt"))
	}
	plain := newHarness(t, setup{})
	if q := query(t, plain.app.newBrowser(t).startLogin("/private")); q.Has("prompt") {
		t.Errorf("authorize without offline_access: prompt %q, want none", q.Get("prompt"))
	}
	// At a provider that honours offline_access only with prompt=consent,
	// the session gets a refresh token that works.
	ra := newTokenApp(t, true, func(c *pipaauth.Config) { c.Scopes = scopes },
		func(p *pipatest.Server) { p.SetBehavior(pipatest.Behavior{OfflineAccessOnly: true}) })
	ra.advance(2 * time.Hour)
	if code, body := ra.token(t); code != http.StatusOK {
		t.Errorf("refresh with offline_access: %d %q, want 200", code, body)
	}
}

func TestEmailFromUserInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		user       string
		b          pipatest.Behavior
		noUserInfo bool
		wantEmail  string
		verified   bool
		refused    bool
	}{
		{"only at userinfo", "alice", pipatest.Behavior{EmailOnlyAtUserInfo: true}, false, "alice@example.com", true, false},
		{"email_verified a string", "alice", pipatest.Behavior{EmailOnlyAtUserInfo: true,
			UserInfoHook: func(i map[string]any) { i["email_verified"] = "true" }}, false, "alice@example.com", false, false},
		{"another sub", "alice", pipatest.Behavior{EmailOnlyAtUserInfo: true, UserInfoWrongSubject: true}, false, "", false, true},
		{"malformed email", "alice", pipatest.Behavior{EmailOnlyAtUserInfo: true,
			UserInfoHook: func(i map[string]any) { i["email"] = "not an address" }}, false, "", false, true},
		{"no userinfo endpoint", "alice", pipatest.Behavior{EmailOnlyAtUserInfo: true}, true, "", false, false},
		{"not shared anywhere", "bob", pipatest.Behavior{EmailOnlyAtUserInfo: true}, false, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{discovery: func(doc map[string]any) {
				if tt.noUserInfo {
					delete(doc, "userinfo_endpoint")
				}
			}})
			for _, u := range h.provider.Users() {
				if u.Name == tt.user {
					h.provider.SetUser(u)
				}
			}
			h.setBehavior(tt.b)
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			if tt.refused {
				expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
				b.mustBeLoggedOut()
				return
			}
			if r.status != http.StatusSeeOther {
				t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
			}
			if u := b.mustUser(); u.Email != tt.wantEmail || u.EmailVerified != tt.verified || u.ID != h.subject(tt.user) {
				t.Errorf("user = %+v, want %s with email %q, verified %v", u, tt.user, tt.wantEmail, tt.verified)
			}
		})
	}
}

func TestUnreadableAnswersAreNotUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String() + "/token"
	l.Close()
	const unreadable = "PiPA sent an answer this application cannot read"
	tests := []struct {
		name      string
		b         pipatest.Behavior
		discovery func(map[string]any)
		status    int
		reason    string
	}{
		{"text/plain", pipatest.Behavior{TokenContentType: "text/plain"}, nil, http.StatusBadGateway, unreadable},
		{"form-encoded content type", pipatest.Behavior{TokenContentType: "application/x-www-form-urlencoded"}, nil, http.StatusBadGateway, unreadable},
		{"fractional expires_in", pipatest.Behavior{ExpiresIn: 1.5}, nil, http.StatusBadGateway, unreadable},
		{"negative expires_in", pipatest.Behavior{ExpiresIn: -60}, nil, http.StatusBadGateway, unreadable},
		{"over 1 MiB", pipatest.Behavior{TokenHook: func(r map[string]any) { r["pad"] = strings.Repeat("p", 2<<20) }}, nil, http.StatusBadGateway, unreadable},
		{"userinfo over 1 MiB", pipatest.Behavior{EmailOnlyAtUserInfo: true, UserInfoHook: func(i map[string]any) { i["pad"] = strings.Repeat("p", 2<<20) }}, nil, http.StatusBadGateway, unreadable},
		{"unreachable", pipatest.Behavior{}, func(d map[string]any) { d["token_endpoint"] = closed }, http.StatusBadGateway, "could not be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, setup{discovery: tt.discovery})
			h.setBehavior(tt.b)
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			if r.status != tt.status {
				t.Errorf("callback: %d, want %d", r.status, tt.status)
			}
			errs := h.app.takeErrors()
			var e *pipaauth.Error
			if len(errs) != 1 || !errors.As(errs[0], &e) || !errors.Is(e, pipaauth.ErrExchange) {
				t.Fatalf("errors %v, want one *Error wrapping ErrExchange", errs)
			}
			if !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q, want it to say %q", e.Reason, tt.reason)
			}
			if tt.reason == unreadable && strings.Contains(e.Reason, "reached") {
				t.Errorf("reason %q says unreachable for an answer PiPA sent", e.Reason)
			}
		})
	}
}

func TestLoginRecordsAuthTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	authTime := time.Now().Add(-10 * time.Minute).Unix()
	h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["auth_time"] = authTime }})
	b := h.app.newBrowser(t)
	b.login("/private")
	if got := b.mustUser().AuthTime.Unix(); got != authTime {
		t.Errorf("AuthTime = %d, want the ID token's auth_time %d", got, authTime)
	}
	// Without auth_time, the login time.
	h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { delete(c, "auth_time") }})
	h.clock.Advance(time.Hour)
	b.login("/login")
	if got, want := b.mustUser().AuthTime.Unix(), h.clock.Now().Unix(); got != want {
		t.Errorf("AuthTime without auth_time = %d, want the login time %d", got, want)
	}
}

// TestCookieKeepsTheIDTokenWhenItFits pins the sizes the README gives: in
// cookie mode, an ID token up to about 5 KB is kept in its cookies at
// LogoutPath (logout sends it as id_token_hint); a larger one is dropped
// and the login still succeeds with every cookie under 4096 bytes (the
// harness checks every Set-Cookie).
func TestCookieKeepsTheIDTokenWhenItFits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		size int // bytes of the ID token
		keep bool
		kept bool
	}{
		{1200, false, true},
		{1900, false, true},
		{1900, true, true}, // with pipatest's short tokens kept too
		{2300, false, true},
		{2300, true, true},
		{4500, false, true}, // over two cookies
		{8000, false, false},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			h, ids, home := logoutSetup(t, func(cfg *pipaauth.Config) { cfg.KeepTokens = tt.keep })
			b := h.app.newBrowser(t)
			auth := b.startLogin("/private")
			h.setBehavior(pipatest.Behavior{RequireIDTokenHint: true, TokenHook: ids.hook, ClaimsHook: padIDToken(tt.size)})
			if r := b.finish(auth); r.status != http.StatusSeeOther {
				t.Fatalf("callback: %d, want 303; errors %v", r.status, h.app.takeErrors())
			}
			if n := len(ids.last()); n < tt.size-4 || n > tt.size+4 {
				t.Fatalf("the ID token is %d bytes, want %d", n, tt.size)
			}
			b.mustUser()
			q := query(t, b.post("/logout").location())
			if got := q.Get("id_token_hint") == ids.last(); got != tt.kept {
				t.Errorf("%d-byte ID token: sent as id_token_hint %v, want %v", tt.size, got, tt.kept)
			}
			if got := q.Get("post_logout_redirect_uri") == home; got != tt.kept {
				t.Errorf("%d-byte ID token: post_logout_redirect_uri sent %v, want %v", tt.size, got, tt.kept)
			}
		})
	}
}

// padIDToken pads the ID token's claims so that the signed token is about
// size bytes (RS256 with a 2048-bit key: 342 bytes of signature).
func padIDToken(size int) func(map[string]any) {
	return func(c map[string]any) {
		c["pad"] = ""
		payload, _ := json.Marshal(c)
		// header.payload.signature, base64url: a 70-character header
		// ({"alg":"RS256","kid":"<16>","typ":"JWT"}), 4 characters per 3
		// payload bytes, a 342-character signature.
		want := (size - 70 - 342 - 2) * 3 / 4
		if n := want - len(payload); n > 0 {
			c["pad"] = strings.Repeat("p", n)
		}
	}
}
