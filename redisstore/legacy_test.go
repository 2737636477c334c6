package redisstore_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/redisstore"
)

// legacyFixture is testdata/legacy-206ca26.json: keys written by redisstore
// before the per-user hash tags (see testdata/README.md).
type legacyFixture struct {
	Generated time.Time `json:"generated"`
	HashKey   string    `json:"hash_key"`
	BlockKey  string    `json:"block_key"`
	Cookies   []struct {
		User, Sub, Cookie string
	} `json:"cookies"`
	Keys []struct {
		Key     string            `json:"key"`
		Type    string            `json:"type"`
		Hash    map[string]string `json:"hash_b64"`
		Members []string          `json:"zset_members"`
	} `json:"keys"`
}

// Sessions written by the previous redisstore keep working: served,
// listed, logged out, revoked by sub and by sid, after the upgrade.
func TestLegacyLayout(t *testing.T) {
	raw, err := os.ReadFile("testdata/legacy-206ca26.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx legacyFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	redis := startRedis(t)
	r := newRaw(t, redis.Addr)
	until := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	for _, k := range fx.Keys {
		switch k.Type {
		case "hash":
			for f, v := range k.Hash {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					t.Fatal(err)
				}
				r.do("HSET", k.Key, f, string(b))
			}
		case "zset":
			for _, m := range k.Members {
				r.do("ZADD", k.Key, until, m)
			}
		}
		r.do("PEXPIREAT", k.Key, until)
	}
	hashKey, _ := hex.DecodeString(fx.HashKey)
	blockKey, _ := hex.DecodeString(fx.BlockKey)
	store := newStore(t, newClient(t, redis.Addr), redisstore.Options{})
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The fixture's logins are from its generation; run the clock from then.
	offset := time.Since(fx.Generated) - time.Minute
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer: provider.URL, ClientID: pipatest.DefaultClientID, ClientSecret: pipatest.DefaultClientSecret,
		RedirectURL: srv.URL + "/callback", SessionKeys: [][]byte{hashKey, blockKey}, SessionStore: store,
		InsecureAllowHTTP: true, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Now().Add(-offset) },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/logout", auth.LogoutHandler())
	mux.Handle("/private", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, "hello "+u.ID)
	})))
	cookie := func(i int) *http.Cookie {
		return &http.Cookie{Name: pipaauth.DefaultCookieName, Value: fx.Cookies[i].Cookie}
	}
	for i, c := range fx.Cookies {
		if code, body := getBody(t, srv.URL+"/private", cookie(i)); code != 200 || body != "hello "+c.Sub {
			t.Fatalf("old session %d (%s): %d %q", i, c.User, code, body)
		}
	}
	alice, bob := fx.Cookies[0].Sub, fx.Cookies[2].Sub
	ctx := t.Context()
	if list, err := auth.UserSessions(ctx, alice); err != nil || len(list) != 2 {
		t.Errorf("alice's old sessions listed: %+v %v, want 2", list, err)
	}
	// Logout of an old session.
	req, _ := http.NewRequest("POST", srv.URL+"/logout", nil)
	req.AddCookie(cookie(0))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := get(t, srv.URL+"/private", cookie(0)); code != http.StatusUnauthorized {
		t.Errorf("an old session after its logout: %d, want 401", code)
	}
	// Revocation by sid (the second alice session's) and by sub (bob).
	var sid string
	for _, k := range fx.Keys {
		if k.Type == "hash" {
			u, _ := base64.StdEncoding.DecodeString(k.Hash["u"])
			if string(u) == alice && r.int("EXISTS", k.Key) == 1 { // the one not logged out
				s, _ := base64.StdEncoding.DecodeString(k.Hash["s"])
				sid = string(s)
			}
		}
	}
	if n, err := store.RevokeSID(ctx, sid); err != nil || n != 1 {
		t.Errorf("RevokeSID of an old session's sid: %d %v, want 1", n, err)
	}
	if code := get(t, srv.URL+"/private", cookie(1)); code != http.StatusUnauthorized {
		t.Errorf("an old session after RevokeSID: %d, want 401", code)
	}
	if n, err := auth.EndUserSessions(ctx, bob); err != nil || n != 2 {
		t.Errorf("EndUserSessions of bob's old sessions: %d %v, want 2", n, err)
	}
	for i := 2; i < 4; i++ {
		if code := get(t, srv.URL+"/private", cookie(i)); code != http.StatusUnauthorized {
			t.Errorf("old session %d after EndUserSessions: %d, want 401", i, code)
		}
	}
	if n := r.int("DBSIZE"); n != 0 {
		keys, _ := r.do("KEYS", "*").AsStrSlice()
		t.Errorf("Redis still holds %v", keys)
	}
}
