package pipaauth_test

// Upgrades log nobody out: a session written by the main before the lean
// session (format 4, with the ID token and the kept tokens inside the
// session cookie or the store record) keeps working with the same
// SessionKeys, and is rewritten in the new layout at its first write-back.
// testdata/session-v4.json was written by the code of commit 206ca26 (see
// testdata/README.md).

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

type v4Fixture struct {
	HashKey      string `json:"hash_key"`
	BlockKey     string `json:"block_key"`
	CookieName   string `json:"cookie_name"`
	CookieValue  string `json:"cookie_value"`
	SealedAt     string `json:"sealed_at"`
	Payload      string `json:"payload"` // the serialized session, before sealing
	UserID       string `json:"user_id"`
	Email        string `json:"email"`
	LoginAt      string `json:"login_at"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

func readV4Fixture(t *testing.T) v4Fixture {
	t.Helper()
	b, err := os.ReadFile("testdata/session-v4.json")
	if err != nil {
		t.Fatal(err)
	}
	var f v4Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// upgradeApp is an application with the fixture's keys and clock (an hour
// after its login), KeepTokens and an idle timeout, so that the first
// guarded request writes the session back.
type upgradeApp struct {
	provider *pipatest.Server
	*testApp
	revoked chan string
}

func newUpgradeApp(t *testing.T, f v4Fixture, store *memRevocable) *upgradeApp {
	t.Helper()
	login, err := time.Parse(time.RFC3339, f.LoginAt)
	if err != nil {
		t.Fatal(err)
	}
	ua := &upgradeApp{provider: pipatest.NewTLSServer(), revoked: make(chan string, 4)}
	t.Cleanup(ua.provider.Close)
	ua.testApp = newTestApp(t, ua.provider, func(c *pipaauth.Config) {
		c.SessionKeys = [][]byte{[]byte(f.HashKey), []byte(f.BlockKey)}
		c.Now = func() time.Time { return login.Add(time.Hour) }
		c.KeepTokens = true
		c.IdleTimeout = 6 * time.Hour
		if store != nil {
			c.SessionStore = store
		}
	})
	ua.mux.Handle("/logout", ua.auth.LogoutHandler())
	ua.mux.Handle("/private", ua.auth.RequireLogin(http.HandlerFunc(echoUser)))
	ua.mux.Handle("/token", ua.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := ua.auth.Token(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		io.WriteString(w, tok.AccessToken)
	})))
	return ua
}

// do sends a request with the cookies given, and returns the response and
// the cookies it set (by name; deletions have an empty value).
func (ua *upgradeApp) do(t *testing.T, method, path string, cookies map[string]string) (*http.Response, string, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(method, ua.srv.URL+path, nil)
	var parts []string
	for k, v := range cookies {
		parts = append(parts, k+"="+v)
	}
	req.Header.Set("Cookie", strings.Join(parts, "; "))
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Origin", ua.srv.URL)
	}
	c := ua.provider.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	set := map[string]string{}
	for _, sc := range resp.Cookies() {
		set[sc.Name] = sc.Value
	}
	return resp, strings.TrimSpace(string(body)), set
}

// checkWorks checks that cookies carry the fixture's session: its user on
// a guarded page, its access token from Token, its ID token as the
// logout's id_token_hint. It returns the cookies of the first guarded
// answer (the write-back), merged over cookies.
func (ua *upgradeApp) checkWorks(t *testing.T, f v4Fixture, cookies map[string]string) map[string]string {
	t.Helper()
	resp, body, set := ua.do(t, "GET", "/private", cookies)
	var u pipaauth.User
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &u) != nil || u.ID != f.UserID || u.Email != f.Email {
		t.Fatalf("GET /private: %d %q, want 200 with user %s", resp.StatusCode, body, f.UserID)
	}
	merged := map[string]string{}
	for k, v := range cookies {
		merged[k] = v
	}
	for k, v := range set {
		if v == "" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	if resp, body, _ := ua.do(t, "GET", "/token", merged); resp.StatusCode != http.StatusOK || body != f.AccessToken {
		t.Errorf("GET /token: %d %q, want 200 with the kept access token", resp.StatusCode, body)
	}
	resp, _, _ = ua.do(t, "POST", "/logout", merged)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("id_token_hint") != f.IDToken {
		t.Errorf("POST /logout: %d to %.80s..., want 303 with the session's ID token as id_token_hint", resp.StatusCode, resp.Header.Get("Location"))
	}
	return merged
}

func TestUpgradeFromFormat4Cookie(t *testing.T) {
	f := readV4Fixture(t)
	raw, err := base64.StdEncoding.DecodeString(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	// securecookie refuses a value sealed more than its max age ago (the
	// session lifetime and a day, by the real clock): the old code's seal
	// is tested while it is within it, and the old code's bytes, sealed
	// now under the same keys and name, always.
	resealer := securecookie.New([]byte(f.HashKey), []byte(f.BlockKey))
	resealer.SetSerializer(securecookie.NopEncoder{})
	resealed, err := resealer.Encode(f.CookieName, raw)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"resealed payload": resealed}
	if at, err := time.Parse(time.RFC3339, f.SealedAt); err == nil && time.Since(at) < 30*time.Hour {
		values["sealed by the old code"] = f.CookieValue
	} else {
		t.Logf("the old code's seal (%s) is past securecookie's max age; testing its payload resealed", f.SealedAt)
	}
	for name, value := range values {
		t.Run(name, func(t *testing.T) {
			ua := newUpgradeApp(t, f, nil)
			old := map[string]string{f.CookieName: value}
			// The old cookie works as it is, and its first write-back (the
			// idle-timeout slide) rewrites it in the new layout.
			after := ua.checkWorks(t, f, old)
			if after[f.CookieName] == value {
				t.Fatal("the first guarded request did not write the session back")
			}
			base := strings.TrimPrefix(sessionCookieName(pipaauth.Config{ClientID: clientID}), "__Host-")
			for _, name := range []string{"__Host-" + base + "-tok0", "__Secure-" + base + "-idt0"} {
				if after[name] == "" {
					t.Errorf("the write-back set no %s cookie; it set %v", name, keys(after))
				}
			}
			if n := len(f.CookieName) + 1 + len(after[f.CookieName]); n > 512 {
				t.Errorf("the rewritten session cookie is %d bytes, want at most 512", n)
			}
			// The new layout works on its own, with the same user, tokens
			// and ID token.
			ua.checkWorks(t, f, after)
		})
	}
}

func TestUpgradeFromFormat4Record(t *testing.T) {
	f := readV4Fixture(t)
	raw, err := base64.StdEncoding.DecodeString(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	store := newMemRevocable()
	const id = "FIXTURERECORDID0123456789A"
	store.recs[id] = memRevocableRec{data: raw, version: 1, sub: f.UserID}
	sealer := securecookie.New([]byte(f.HashKey), []byte(f.BlockKey))
	sealer.SetSerializer(securecookie.NopEncoder{})
	value, err := sealer.Encode(f.CookieName, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	ua := newUpgradeApp(t, f, store)
	ua.checkWorks(t, f, map[string]string{f.CookieName: value})
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
