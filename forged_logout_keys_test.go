package pipaauth_test

// Anonymous back-channel logout tokens and PiPA's key set (security
// review): a forged logout token must not spend the JWKS fetch that logins
// need after PiPA rotates its key.

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/memstore"
	"github.com/pipaauth/pipaauth/pipatest"
)

// forgedApp is an application with a back-channel logout endpoint and a
// guarded page, whose JWKS fetches kp counts.
type forgedApp struct {
	provider *pipatest.Server
	app      *testApp
	kp       *keyProvider
}

func newForgedApp(t *testing.T, exchangeTimeout time.Duration) *forgedApp {
	t.Helper()
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	kp := newKeyProvider(t)
	app := newTestApp(t, provider, func(c *pipaauth.Config) {
		kp.wrap(c)
		c.SessionStore = memstore.New(memstore.Options{})
		c.ExchangeTimeout = exchangeTimeout // 0: the default, 10s
	})
	a := app.auth
	app.mux.Handle("/login", a.LoginHandler())
	app.mux.Handle("/callback", a.CallbackHandler())
	app.mux.Handle("/bcl", a.BackChannelLogoutHandler())
	app.mux.Handle("/private", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })))
	return &forgedApp{provider: provider, app: app, kp: kp}
}

func (f *forgedApp) postLogout(t *testing.T, tok string) int {
	t.Helper()
	resp, err := http.Post(f.app.srv.URL+"/bcl", "application/x-www-form-urlencoded", strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// forgedLogoutToken is a logout token signed by a key of the attacker's,
// with a kid PiPA's JWKS does not have, and the given claims.
func forgedLogoutToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "forged-kid", Algorithm: "RS256"}}, (&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

// A forged logout token that names another issuer, another client, or no
// logout event is refused (400) before its signature is checked: it makes
// no JWKS fetch. One that names them all does get its fetch (at most one
// per UnknownKeyInterval), but not the one a login needs: after PiPA
// rotates its key, the next login goes through at once.
func TestForgedLogoutTokenDoesNotDelayLogins(t *testing.T) {
	t.Parallel()
	t.Run("refused before the key set", func(t *testing.T) {
		t.Parallel()
		f := newForgedApp(t, 0)
		iss, now := f.provider.URL, time.Now().Unix()
		event := map[string]any{pipatest.BackChannelLogoutEvent: map[string]any{}}
		for _, tt := range []struct {
			name string
			tok  string
		}{
			{"another issuer", forgedLogoutToken(t, map[string]any{"iss": "https://attacker.example", "aud": clientID, "iat": now, "jti": "1", "sub": "alice", "events": event})},
			{"no issuer", forgedLogoutToken(t, map[string]any{"aud": clientID, "iat": now, "jti": "2", "sub": "alice", "events": event})},
			{"another audience", forgedLogoutToken(t, map[string]any{"iss": iss, "aud": "another-client", "iat": now, "jti": "3", "sub": "alice", "events": event})},
			{"this and another audience", forgedLogoutToken(t, map[string]any{"iss": iss, "aud": []string{clientID, "another-client"}, "iat": now, "jti": "4", "sub": "alice", "events": event})},
			{"audience not a string", forgedLogoutToken(t, map[string]any{"iss": iss, "aud": 7, "iat": now, "jti": "5", "sub": "alice", "events": event})},
			{"no logout event", forgedLogoutToken(t, map[string]any{"iss": iss, "aud": clientID, "iat": now, "jti": "6", "sub": "alice", "events": map[string]any{"other": map[string]any{}}})},
			{"no events", forgedLogoutToken(t, map[string]any{"iss": iss, "aud": clientID, "iat": now, "jti": "7", "sub": "alice"})},
			{"payload not JSON", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"nope"}`)) + "." +
				base64.RawURLEncoding.EncodeToString([]byte(`not json`)) + ".c2ln"},
		} {
			if got := f.postLogout(t, tt.tok); got != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", tt.name, got)
			}
		}
		if n := f.kp.fetches.Load(); n != 0 {
			t.Errorf("forged logout tokens that can never pass made %d JWKS fetches, want 0", n)
		}
	})
	for _, et := range []time.Duration{0, 5 * time.Second} {
		t.Run("well-formed, ExchangeTimeout "+et.String(), func(t *testing.T) {
			t.Parallel()
			f := newForgedApp(t, et)
			tok := forgedLogoutToken(t, map[string]any{"iss": f.provider.URL, "aud": clientID, "iat": time.Now().Unix(), "jti": "j", "sub": "alice",
				"events": map[string]any{pipatest.BackChannelLogoutEvent: map[string]any{}}})
			if got := f.postLogout(t, tok); got != http.StatusBadRequest {
				t.Errorf("forged logout token: %d, want 400", got)
			}
			if n := f.kp.fetches.Load(); n != 1 {
				t.Errorf("the forged logout token made %d JWKS fetches, want 1 (its kid is not known)", n)
			}
			f.provider.RotateKeys()
			jar, _ := cookiejar.New(nil)
			b := &http.Client{Jar: jar}
			start := time.Now()
			resp, err := b.Get(f.app.srv.URL + "/private")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if took := time.Since(start); resp.StatusCode != http.StatusOK || took > 5*time.Second {
				t.Errorf("the login right after a key rotation: %d after %v (%.100q), want 200 at once: the forged logout token's fetch must not hold back the ID token's",
					resp.StatusCode, took.Round(time.Millisecond), body)
			}
			if n := f.kp.fetches.Load(); n != 2 {
				t.Errorf("%d JWKS fetches, want 2 (the forged token's, the login's)", n)
			}
			// The anonymous source stays throttled: more forged tokens
			// within the interval fetch nothing.
			for range 5 {
				f.postLogout(t, tok)
			}
			if n := f.kp.fetches.Load(); n != 2 {
				t.Errorf("%d JWKS fetches after more forged tokens, want still 2", n)
			}
		})
	}
}
