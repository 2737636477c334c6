package pipaauth_test

// Regressions found by the security review of the day's merge (claims):
// each test fails on the code before its fix.

import (
	"errors"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// Claim names are case-sensitive (RFC 7519 section 4, OpenID Connect Core
// 5.1): an ID token whose "email" is absent but which carries a claim
// "EMAIL" (say a custom attribute a user can edit, released by the
// provider) must not set User.Email.
func TestClaimNamesAreCaseSensitive(t *testing.T) {
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		cfg.Scopes = []string{"openid", "email"}
	}})
	h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) {
		delete(c, "email")
		delete(c, "email_verified")
		c["EMAIL"] = "alice@example.com"
		c["Email_Verified"] = true
	}, UserInfoHook: func(info map[string]any) {
		delete(info, "email")
		delete(info, "email_verified")
	}})
	h.provider.SetUser(pipatest.User{Name: "mallory"})
	b := h.app.newBrowser(t)
	b.login("/private")
	u := b.mustUser()
	t.Logf("user: id %s email %q verified %v", u.ID, u.Email, u.EmailVerified)
	if u.Email != "" {
		t.Errorf("User.Email %q taken from a claim named EMAIL", u.Email)
	}
	if r := b.get("/admin"); r.status == 200 {
		t.Errorf("mallory passes AllowEmails(alice@example.com) on /admin through an EMAIL claim")
	}
}

// The same through UserInfo (the ID token has no email; UserInfo answers
// "EMAIL" and "SUB" instead of "email" and "sub").
func TestUserInfoClaimNamesAreCaseSensitive(t *testing.T) {
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		cfg.Scopes = []string{"openid", "email"}
	}})
	h.setBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) {
		delete(c, "email")
		delete(c, "email_verified")
	}, UserInfoHook: func(info map[string]any) {
		info["SUB"] = info["sub"]
		delete(info, "sub")
		delete(info, "email")
		delete(info, "email_verified")
		info["EMAIL"] = "alice@example.com"
		info["EMAIL_VERIFIED"] = true
	}})
	h.provider.SetUser(pipatest.User{Name: "mallory"})
	b := h.app.newBrowser(t)
	r := b.finish(b.startLogin("/private"))
	t.Logf("callback: %d errors %v", r.status, h.app.takeErrors())
	if r.status == 303 {
		u := b.mustUser()
		t.Errorf("UserInfo without a sub claim accepted (SUB instead); User.Email %q verified %v", u.Email, u.EmailVerified)
	}
}

// Kept tokens too large for the token cookies, with one tiny kept claim:
// the login's refusal blames the claim.
func TestTokensTooLargeAreNotBlamedOnClaims(t *testing.T) {
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		cfg.KeepTokens = true
		cfg.Claims = []string{"groups"}
	}})
	h.setBehavior(pipatest.Behavior{AccessTokenBytes: 9000, RefreshTokenBytes: 9000})
	h.provider.SetUser(pipatest.User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true,
		Claims: map[string]any{"groups": []string{"a"}}})
	b := h.app.newBrowser(t)
	r := b.finish(b.startLogin("/private"))
	errs := h.app.takeErrors()
	t.Logf("callback: %d errors %v", r.status, errs)
	for _, err := range errs {
		if errors.Is(err, pipaauth.ErrClaimsTooLarge) {
			t.Errorf("tokens too large for cookies reported as ErrClaimsTooLarge: %v", err)
		}
	}
}

// go-oidc decodes sub and iss ignoring case: an ID token that spells them
// otherwise ("SUB" standing for, or beside, "sub") is refused.
func TestIDTokenSubAndIssMustBeSpelledExactly(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
	}{
		{"SUB instead of sub", func(c map[string]any) { c["SUB"] = c["sub"]; delete(c, "sub") }},
		{"Iss instead of iss", func(c map[string]any) { c["Iss"] = c["iss"]; delete(c, "iss") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, setup{})
			h.setBehavior(pipatest.Behavior{ClaimsHook: tc.edit})
			b := h.app.newBrowser(t)
			if r := b.finish(b.startLogin("/private")); r.status == 303 {
				t.Errorf("an ID token with %s logged in", tc.name)
			}
			h.app.takeErrors()
		})
	}
}
