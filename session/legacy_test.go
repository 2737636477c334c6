package session

import (
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// upgradeFixture is testdata/upgrade-default-cookie-name.json: a session
// sealed in a cookie, and one kept in a RevocableStore, written by the main
// before the default cookie name became unique per client id (commit
// 206ca26), under the name that main gave every application,
// "__Host-pipaauth". The cookies' securecookie timestamps are from the day
// they were written: the Managers here get a lifetime long enough to open
// them, and a clock at the login time.
type upgradeFixture struct {
	HashKey           string `json:"hash_key"`
	BlockKey          string `json:"block_key"`
	LoginAt           int64  `json:"login_at"`
	Name              string `json:"name"`
	CookieValue       string `json:"cookie_value"`
	RecordCookieValue string `json:"record_cookie_value"`
	RecordID          string `json:"record_id"`
	RecordData        string `json:"record_data"`
}

func loadUpgradeFixture(t *testing.T) (upgradeFixture, [][]byte, *clock) {
	t.Helper()
	b, err := os.ReadFile("../testdata/upgrade-default-cookie-name.json")
	if err != nil {
		t.Fatal(err)
	}
	var f upgradeFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	hk, _ := base64.StdEncoding.DecodeString(f.HashKey)
	bk, _ := base64.StdEncoding.DecodeString(f.BlockKey)
	return f, [][]byte{hk, bk}, &clock{time.Unix(f.LoginAt, 0).Add(time.Minute)}
}

const newName = "__Host-pipaauth-0123456789ab"

func legacyOptions(kp [][]byte) func(*Options) {
	return func(o *Options) {
		o.Name, o.LegacyName, o.KeyPairs = newName, "__Host-pipaauth", kp
		o.Lifetime = 20 * 365 * 24 * time.Hour
	}
}

func TestLegacyCookieNameUpgrade(t *testing.T) {
	for _, mode := range []string{"cookie", "record store"} {
		t.Run(mode, func(t *testing.T) {
			f, kp, c := loadUpgradeFixture(t)
			var store *memRecords
			value := f.CookieValue
			var m *Manager
			if mode == "cookie" {
				m = newManager(t, c, legacyOptions(kp))
			} else {
				store = newMemRecords()
				raw, _ := base64.StdEncoding.DecodeString(f.RecordData)
				store.recs[f.RecordID] = memRec{data: raw, version: 1, sub: "fixture-sub", expires: c.t.Add(time.Hour)}
				store.next = 1
				value = f.RecordCookieValue
				m = newRecordManager(t, c, store, kp, legacyOptions(kp))
			}
			j := newCookieJar()
			j.values[f.Name], j.names = value, []string{f.Name}
			d, err := m.Load(j.request())
			if err != nil || !d.LoggedIn() || d.User.ID != "fixture-sub" || d.User.Email != "alice@example.com" || d.SID != "fixture-sid" {
				t.Fatalf("Load of the old session: %+v, %v; want fixture-sub logged in", d, err)
			}
			// The next write moves it to the new name and deletes the old.
			next := d.Clone()
			next.LastSeen = c.t
			rec := httptest.NewRecorder()
			if err := m.Save(rec, j.request(), next); err != nil {
				t.Fatal(err)
			}
			j.apply(t, rec.Header())
			if _, ok := j.values[f.Name]; ok {
				t.Errorf("the old cookie is still there after a write: %q", rec.Header().Values("Set-Cookie"))
			}
			if _, ok := j.values[newName]; !ok {
				t.Fatalf("no cookie under the new name after a write: %q", rec.Header().Values("Set-Cookie"))
			}
			if d, err := m.Load(j.request()); err != nil || d.User.ID != "fixture-sub" {
				t.Errorf("Load after the move: %+v, %v", d, err)
			}
			if store != nil {
				// The record kept its id: compare-and-set went on as usual.
				if rec, ok := store.recs[f.RecordID]; !ok || rec.version != 2 || len(store.recs) != 1 {
					t.Errorf("records after the move: %+v, want the old id at version 2 and nothing else", store.recs)
				}
			}
			// Logout ends it.
			rec = httptest.NewRecorder()
			if err := m.Clear(rec, j.request()); err != nil {
				t.Fatal(err)
			}
			j.apply(t, rec.Header())
			if d, _ := m.Load(j.request()); d != nil {
				t.Errorf("a session after Clear: %+v", d)
			}
			if store != nil && len(store.recs) != 0 {
				t.Errorf("records after Clear: %+v", store.recs)
			}
		})
	}
}

// Clear of a session still under the old name deletes it.
func TestLegacyCookieClear(t *testing.T) {
	f, kp, c := loadUpgradeFixture(t)
	store := newMemRecords()
	raw, _ := base64.StdEncoding.DecodeString(f.RecordData)
	store.recs[f.RecordID] = memRec{data: raw, version: 1, sub: "fixture-sub", expires: c.t.Add(time.Hour)}
	m := newRecordManager(t, c, store, kp, legacyOptions(kp))
	j := newCookieJar()
	j.values[f.Name], j.names = f.RecordCookieValue, []string{f.Name}
	rec := httptest.NewRecorder()
	if err := m.Clear(rec, j.request()); err != nil {
		t.Fatal(err)
	}
	j.apply(t, rec.Header())
	if _, ok := j.values[f.Name]; ok || len(store.recs) != 0 {
		t.Errorf("after Clear: cookies %v, records %v; want both gone", j.names, store.recs)
	}
}

// Another application's cookie under the old name (its keys, not ours) is
// never read, and a login here never deletes it.
func TestLegacyCookieOfAnotherApplication(t *testing.T) {
	f, _, c := loadUpgradeFixture(t)
	m := newManager(t, c, legacyOptions(keys(1)))
	j := newCookieJar()
	j.values[f.Name], j.names = f.CookieValue, []string{f.Name}
	if d, _ := m.Load(j.request()); d != nil {
		t.Fatalf("a cookie sealed with other keys was loaded: %+v", d)
	}
	rec := httptest.NewRecorder()
	if err := m.Renew(rec, j.request(), &Data{User: User{ID: "bob"}, LoginAt: c.t, LastSeen: c.t}); err != nil {
		t.Fatal(err)
	}
	rec2 := httptest.NewRecorder()
	if err := m.Clear(rec2, j.request()); err != nil {
		t.Fatal(err)
	}
	j.apply(t, rec.Header())
	j.apply(t, rec2.Header())
	if j.values[f.Name] != f.CookieValue {
		t.Errorf("another application's cookie was deleted: %q %q", rec.Header().Values("Set-Cookie"), rec2.Header().Values("Set-Cookie"))
	}
}

// A login started before the upgrade (its attempt cookie under the old
// name) finishes after it.
func TestLegacyAttemptFound(t *testing.T) {
	_, kp, c := loadUpgradeFixture(t)
	old := newManager(t, c, func(o *Options) { o.Name, o.KeyPairs = "__Host-pipaauth", kp })
	m := newManager(t, c, legacyOptions(kp))
	j := newCookieJar()
	start(t, old, j, attempt("s", c.t))
	if a, ok, _ := take(t, m, j, "s"); !ok || a.State != "s" {
		t.Fatalf("an attempt started under the old name is not found: %+v %v", a, ok)
	}
	if len(j.values) != 0 {
		t.Errorf("the attempt cookie was not deleted: %v", j.names)
	}
}
