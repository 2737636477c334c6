package redisstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/redisstore"
)

// ListSessions on a single node: the listing's fields, last seen stamped
// by a write-back, expired and deleted sessions left out, the User-Agent
// bounded, ids from NewSessionID carrying the user's tag.
func TestListSessions(t *testing.T) {
	srv := startRedis(t)
	r := newRaw(t, srv.Addr)
	s := newStore(t, newClient(t, srv.Addr), redisstore.Options{KeyPrefix: "app:"})
	ctx := ctxT(t, 10*time.Second)
	login := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	id1, _ := s.NewSessionID("alice")
	id2, _ := s.NewSessionID("alice")
	idBob, _ := s.NewSessionID("bob")
	if id1 == id2 || len(id1) != 33 || !strings.HasPrefix(id2, id1[:7]) || strings.HasPrefix(idBob, id1[:7]) {
		t.Errorf("ids %q %q %q: want the user's tag, a dot and 26 random characters", id1, id2, idBob)
	}
	exp := time.Now().Add(time.Hour)
	for _, c := range []struct {
		id, sub, ua string
		expires     time.Time
	}{
		{id1, "alice", "A", exp},
		{id2, "alice", strings.Repeat("b", 300), exp},
		{idBob, "bob", "C", exp},
	} {
		if ok, err := s.CreateListedSession(ctx, c.id, []byte("d"), c.sub, "", c.expires, login, c.ua); !ok || err != nil {
			t.Fatalf("create: %v %v", ok, err)
		}
	}
	if n := r.int("EXISTS", "app:{"+id1[:6]+"}:s:"+id1); n != 1 {
		t.Errorf("the session is not under app:{tag}:s:<id>")
	}
	list, err := s.ListSessions(ctx, "alice")
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	for _, l := range list {
		if !l.LoginAt.Equal(login) || !l.LastSeen.Equal(login) || len(l.UserAgent) > 256 {
			t.Errorf("listed %+v: want login and last seen %v, a User-Agent of at most 256 bytes", l, login)
		}
	}
	if ok, err := s.ReplaceSession(ctx, id1, 1, []byte("e"), "alice", "", exp); !ok || err != nil {
		t.Fatalf("replace: %v %v", ok, err)
	}
	list, _ = s.ListSessions(ctx, "alice")
	for _, l := range list {
		if l.ID == id1 && time.Since(l.LastSeen) > 5*time.Second {
			t.Errorf("last seen %v after a write-back, want now", l.LastSeen)
		}
	}
	if err := s.DeleteSession(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSessions(ctx, "alice"); len(list) != 1 || list[0].ID != id1 {
		t.Errorf("after a delete: %+v", list)
	}
	// A write-back of the deleted session does not revive it.
	if ok, _ := s.ReplaceSession(ctx, id2, 1, []byte("e"), "alice", "", exp); ok {
		t.Error("a write-back revived a deleted session")
	}
	if list, _ := s.ListSessions(ctx, "nobody"); list == nil || len(list) != 0 {
		t.Errorf("an unknown user's sessions: %#v, want an empty slice", list)
	}
}
