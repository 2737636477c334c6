package pipaauth_test

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// upgradeFixture is testdata/upgrade/pre-claims.json: a session of alice
// written by the main before claims were kept (206ca26), in cookie mode and
// in a server-side store (see testdata/upgrade/fixture_gen_test.go.txt).
type upgradeFixture struct {
	HashKey       string `json:"hash_key"`
	BlockKey      string `json:"block_key"`
	LifetimeHours int    `json:"session_lifetime_hours"`
	WrittenAt     int64  `json:"written_at"`
	UserID        string `json:"user_id"`
	Email         string
	CookieCookie  string `json:"cookie_cookie"`
	StoreCookie   string `json:"store_cookie"`
	StoreID       string `json:"store_id"`
	StoreRecord   string `json:"store_record"`
	StoreValueKey string `json:"store_value_key"`
}

// fixtureStore is the generator's store: a gorilla store whose cookie is
// the session id itself.
type fixtureStore struct {
	mu   sync.Mutex
	data map[string]map[any]any
}

func (s *fixtureStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return s.New(r, name)
}

func (s *fixtureStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = &sessions.Options{Path: "/", MaxAge: 3600}
	sess.IsNew = true
	if c, err := r.Cookie(name); err == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if v, ok := s.data[c.Value]; ok {
			sess.ID, sess.Values, sess.IsNew = c.Value, maps.Clone(v), false
		}
	}
	return sess, nil
}

func (s *fixtureStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.Options.MaxAge < 0 {
		delete(s.data, sess.ID)
		return nil
	}
	if sess.ID == "" {
		sess.ID = "new-" + time.Now().Format("150405.000000000")
	}
	s.data[sess.ID] = maps.Clone(sess.Values)
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, sess.Options))
	return nil
}

// Sessions written before claims were kept keep working, with no claims,
// whatever Config.Claims now names; the next login brings them.
func TestClaimsUpgradeFixture(t *testing.T) {
	raw, err := os.ReadFile("testdata/upgrade/pre-claims.json")
	if err != nil {
		t.Fatal(err)
	}
	var f upgradeFixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	hash, _ := base64.StdEncoding.DecodeString(f.HashKey)
	block, _ := base64.StdEncoding.DecodeString(f.BlockKey)
	record, _ := base64.StdEncoding.DecodeString(f.StoreRecord)
	p := pipatest.NewServer()
	t.Cleanup(p.Close)
	for _, mode := range []string{"cookie", "store"} {
		t.Run(mode, func(t *testing.T) {
			store := &fixtureStore{data: map[string]map[any]any{f.StoreID: {f.StoreValueKey: record}}}
			auth, err := pipaauth.New(t.Context(), pipaauth.Config{
				Issuer: p.URL, ClientID: pipatest.DefaultClientID, ClientSecret: pipatest.DefaultClientSecret,
				RedirectURL: "http://127.0.0.1/callback", SessionKeys: [][]byte{hash, block}, InsecureAllowHTTP: true,
				SessionLifetime: time.Duration(f.LifetimeHours) * time.Hour,
				Now:             func() time.Time { return time.Unix(f.WrittenAt, 0).Add(time.Minute) },
				Claims:          []string{"name", "groups"},
				Logger:          slog.New(slog.DiscardHandler),
				SessionStore: func() sessions.Store {
					if mode == "store" {
						return store
					}
					return nil
				}(),
			})
			if err != nil {
				t.Fatal(err)
			}
			var got pipaauth.User
			var ok bool
			h := auth.RequireUser(func(u pipaauth.User) bool { got, ok = u, true; return true })(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest("GET", "/", nil)
			value := f.CookieCookie
			if mode == "store" {
				value = f.StoreCookie
			}
			req.AddCookie(&http.Cookie{Name: "pipaauth", Value: value})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || !ok {
				t.Fatalf("old session: %d, want 200 with the user", rec.Code)
			}
			if got.ID != f.UserID || got.Email != f.Email || !got.EmailVerified {
				t.Errorf("user = %+v, want %s %s verified", got, f.UserID, f.Email)
			}
			var v any
			if has, err := got.Claim("groups", &v); has || err != nil {
				t.Errorf("Claim(groups) on an old session = %v, %v; want false, nil", has, err)
			}
			if pipaauth.AllowClaim("groups", "admins")(got) {
				t.Error("AllowClaim admitted an old session without claims")
			}
		})
	}
}
