package session

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// idRecords is memRecords whose store chooses the ids (IDMaker).
type idRecords struct {
	*memRecords
	id  string
	err error
	got []string // the subs NewSessionID was asked for
}

func (s *idRecords) NewSessionID(sub string) (string, error) {
	s.got = append(s.got, sub)
	return s.id, s.err
}

func TestIDMaker(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		err  error
		ok   bool
	}{
		{"a good id", "tag.0123456789ABCDEFGHIJKLMNOP", nil, true},
		{"empty", "", nil, false},
		{"too long", strings.Repeat("x", 65), nil, false},
		{"an error", "", errors.New("no randomness"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{time.Unix(1_800_000_000, 0)}
			kp := keys(1)
			s := &idRecords{memRecords: newMemRecords(), id: tc.id, err: tc.err}
			m := newManager(t, c, func(o *Options) {
				o.Store = s
				o.KeyPairs = kp
				o.StoreTimeout = time.Second
			})
			rec := httptest.NewRecorder()
			err := m.Renew(rec, nil, loggedIn(c.now()))
			if tc.ok {
				if err != nil {
					t.Fatalf("Renew: %v", err)
				}
				if got := idOf(t, kp, withCookies(rec.Result().Cookies())); got != tc.id {
					t.Errorf("the cookie holds id %q, want the store's %q", got, tc.id)
				}
				if len(s.got) != 1 || s.got[0] != "sub-1" {
					t.Errorf("NewSessionID asked for %q, want [sub-1]", s.got)
				}
				return
			}
			if !errors.Is(err, errs.ErrSessionStore) {
				t.Errorf("Renew with a store id %q (%v): %v, want ErrSessionStore", tc.id, tc.err, err)
			}
			if len(rec.Result().Cookies()) != 0 {
				t.Error("a cookie was written")
			}
		})
	}
}

func TestUserAgentCut(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Short/1.0", "Short/1.0"},
		{strings.Repeat("a", 300), strings.Repeat("a", 256)},
		{strings.Repeat("a", 255) + "é", strings.Repeat("a", 255)}, // é would end at byte 257
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", tc.in)
		if got := userAgent(r); got != tc.want {
			t.Errorf("userAgent(%.20q...) = %.20q... (%d bytes), want %d bytes", tc.in, got, len(got), len(tc.want))
		}
	}
}
