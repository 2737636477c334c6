package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// cookieJar is a minimal browser: it applies Set-Cookie lines in order and
// sends every live cookie.
type cookieJar struct {
	names  []string // insertion order
	values map[string]string
}

func newCookieJar() *cookieJar { return &cookieJar{values: map[string]string{}} }

func (j *cookieJar) apply(t *testing.T, h http.Header) {
	t.Helper()
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if c.MaxAge < 0 {
			delete(j.values, c.Name)
			j.names = slices.DeleteFunc(j.names, func(n string) bool { return n == c.Name })
			continue
		}
		if _, ok := j.values[c.Name]; !ok {
			j.names = append(j.names, c.Name)
		}
		j.values[c.Name] = c.Value
	}
}

func (j *cookieJar) header() string {
	var parts []string
	for _, n := range j.names {
		parts = append(parts, n+"="+j.values[n])
	}
	return strings.Join(parts, "; ")
}

func (j *cookieJar) request() *http.Request {
	r := httptest.NewRequest("GET", "/callback", nil)
	if h := j.header(); h != "" {
		r.Header.Set("Cookie", h)
	}
	return r
}

func attempt(state string, now time.Time) Attempt {
	return Attempt{State: state, Nonce: "nonce-" + state, Verifier: strings.Repeat("v", 43), ReturnTo: "/a?tab=" + state, Started: now}
}

func start(t *testing.T, m *Manager, j *cookieJar, a Attempt) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := m.StartAttempt(rec, j.request(), a); err != nil {
		t.Fatalf("StartAttempt: %v", err)
	}
	j.apply(t, rec.Header())
}

func take(t *testing.T, m *Manager, j *cookieJar, state string) (Attempt, bool, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	a, ok := m.TakeAttempt(rec, j.request(), state)
	j.apply(t, rec.Header())
	return a, ok, rec.Header()
}

func TestAttemptCookie(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, nil)
	state := "Zm9vYmFyYmF6cXV4cXV1eA"
	rec := httptest.NewRecorder()
	if err := m.StartAttempt(rec, httptest.NewRequest("GET", "/", nil), attempt(state, c.t)); err != nil {
		t.Fatal(err)
	}
	lines := rec.Header().Values("Set-Cookie")
	if len(lines) != 1 {
		t.Fatalf("Set-Cookie %q, want one attempt cookie", lines)
	}
	h := lines[0]
	for _, want := range []string{"__Host-test-login-", "Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=600"} {
		if !strings.Contains(h, want) {
			t.Errorf("Set-Cookie %q lacks %q", h, want)
		}
	}
	name, _, _ := strings.Cut(h, "=")
	if strings.Contains(name, state) || strings.Contains(h, state) {
		t.Errorf("the attempt cookie %q shows the state", h)
	}
	if strings.Contains(h, "Domain=") {
		t.Errorf("Set-Cookie %q has a Domain", h)
	}
	// Another Manager with other keys names the same state differently.
	if other, _, _ := strings.Cut(m.attempts.name(0, state), "="); other != name {
		t.Errorf("name(%q) = %q, but the cookie is %q", state, other, name)
	}
	if n := newManager(t, c, nil).attempts.name(0, state); n == name {
		t.Errorf("two key sets name the attempt alike (%q): the name is not keyed", n)
	}
}

func TestTakeAttempt(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, nil)
	j := newCookieJar()
	start(t, m, j, attempt("one", c.t))
	start(t, m, j, attempt("two", c.t))
	a, ok, h := take(t, m, j, "one")
	if !ok || !reflect.DeepEqual(a, attempt("one", c.t)) {
		t.Fatalf("TakeAttempt(one) = %+v, %v; want the attempt", a, ok)
	}
	if sc := h.Values("Set-Cookie"); len(sc) != 1 || !strings.Contains(sc[0], "Max-Age=0") {
		t.Errorf("TakeAttempt wrote %q, want its cookie deleted", sc)
	}
	if _, ok, h := take(t, m, j, "one"); ok || len(h.Values("Set-Cookie")) != 0 {
		t.Errorf("TakeAttempt(one) again: %v, Set-Cookie %q; want false and nothing written", ok, h.Values("Set-Cookie"))
	}
	for _, state := range []string{"", "three", strings.Repeat("x", maxField+1)} {
		if _, ok, _ := take(t, m, j, state); ok {
			t.Errorf("TakeAttempt(%.10q) found an attempt", state)
		}
	}
	if a, ok, _ := take(t, m, j, "two"); !ok || a.State != "two" {
		t.Errorf("TakeAttempt(two) = %+v, %v", a, ok)
	}
}

func TestTakeAttemptRefuses(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		edit func(t *testing.T, m *Manager, c *clock, j *cookieJar)
	}{
		{"expired", func(t *testing.T, m *Manager, c *clock, j *cookieJar) { c.t = c.t.Add(10 * time.Minute) }},
		{"from the future", func(t *testing.T, m *Manager, c *clock, j *cookieJar) { c.t = c.t.Add(-2 * time.Minute) }},
		{"tampered", func(t *testing.T, m *Manager, c *clock, j *cookieJar) {
			n := m.attempts.name(0, "s")
			v := []byte(j.values[n])
			v[len(v)/2] ^= 1
			j.values[n] = string(v)
		}},
		{"another state's value", func(t *testing.T, m *Manager, c *clock, j *cookieJar) {
			// The value of t's cookie under s's name: the MAC covers the name.
			rec := httptest.NewRecorder()
			m.StartAttempt(rec, httptest.NewRequest("GET", "/", nil), attempt("t", c.t))
			other := newCookieJar()
			other.apply(t, rec.Header())
			j.values[m.attempts.name(0, "s")] = other.values[m.attempts.name(0, "t")]
		}},
		{"unknown keys", func(t *testing.T, m *Manager, c *clock, j *cookieJar) {
			m.attempts = newManager(t, c, nil).attempts
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now}
			m := newManager(t, c, nil)
			j := newCookieJar()
			start(t, m, j, attempt("s", c.t))
			tt.edit(t, m, c, j)
			if tt.name == "unknown keys" {
				// The other keys name it differently: nothing found, nothing written.
				if _, ok, _ := take(t, m, j, "s"); ok {
					t.Error("an attempt sealed with other keys was taken")
				}
				return
			}
			a, ok, h := take(t, m, j, "s")
			if ok {
				t.Errorf("TakeAttempt = %+v, want refused", a)
			}
			if sc := h.Values("Set-Cookie"); len(sc) != 1 || !strings.Contains(sc[0], "Max-Age=0") {
				t.Errorf("a refused attempt's cookie was not deleted: Set-Cookie %q", sc)
			}
		})
	}
}

func TestAttemptKeyRotation(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	old := keys(1)
	oldM := newManager(t, c, func(o *Options) { o.KeyPairs = old })
	rotated := newManager(t, c, func(o *Options) { o.KeyPairs = append(keys(1), old...) })
	j := newCookieJar()
	start(t, oldM, j, attempt("s", c.t))
	if a, ok, _ := take(t, rotated, j, "s"); !ok || a.State != "s" {
		t.Fatalf("an attempt started with the old keys is not found after rotation: %+v, %v", a, ok)
	}
}

// Sequential starts keep at most MaxPending attempt cookies, the newest.
func TestStartAttemptEvictsTheOldest(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, func(o *Options) { o.MaxPending = 4 })
	j := newCookieJar()
	j.values["unrelated"], j.names = "1", []string{"unrelated"}
	for i := range 10 {
		start(t, m, j, attempt(fmt.Sprint(i), c.t))
		c.t = c.t.Add(time.Second)
	}
	if n := len(j.values); n != 5 {
		t.Errorf("%d cookies after 10 starts, want 4 attempts and the unrelated one: %v", n, j.names)
	}
	for i := range 10 {
		_, ok, _ := take(t, m, j, fmt.Sprint(i))
		if want := i >= 6; ok != want {
			t.Errorf("attempt %d found = %v, want %v", i, ok, want)
		}
	}
	if j.values["unrelated"] != "1" {
		t.Error("a cookie not ours was touched")
	}
	// An unreadable attempt cookie goes at the next start; a cookie whose
	// name merely starts with the prefix (another application's session
	// cookie named <Name>-login-x, and its own attempts) stays.
	junk, foreign := m.attempts.prefix+"AAAAAAAAAAAAAAAA", m.attempts.prefix+"x-login-AAAAAAAAAAAAAAAA"
	j.values[junk], j.values[foreign], j.names = "x", "y", append(j.names, junk, foreign)
	start(t, m, j, attempt("new", c.t))
	if _, ok := j.values[junk]; ok {
		t.Error("an unreadable attempt cookie survived a start")
	}
	if j.values[foreign] != "y" {
		t.Error("a start deleted a cookie outside its own attempt names")
	}
	// A hostile request with thousands of attempt cookies: a start looks
	// at a bounded number of them.
	var many []string
	for i := range 5000 {
		many = append(many, fmt.Sprintf("%s%016d=x", m.attempts.prefix, i))
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", strings.Join(many, "; "))
	rec := httptest.NewRecorder()
	if err := m.StartAttempt(rec, r, attempt("s", c.t)); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Header().Values("Set-Cookie")); n > maxCarried+1 {
		t.Errorf("a start with 5000 attempt cookies wrote %d Set-Cookie lines, want at most %d", n, maxCarried+1)
	}
}

// The attempt cookies a browser keeps after sequential starts, with the
// longest return paths, stay within the Cookie-header budget.
func TestStartAttemptHeaderBudget(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, func(o *Options) { o.Name = "__Host-pipaauth"; o.MaxPending = 4 })
	for _, n := range []int{1, 100, 400, MaxReturnToBytes} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			j := newCookieJar()
			for i := range 20 {
				a := attempt(fmt.Sprintf("state-%02d-%s", i, strings.Repeat("s", 13)), c.t)
				a.ReturnTo = "/" + strings.Repeat("p", n-1)
				start(t, m, j, a)
				if got := len(j.header()) + len("; "); got > attemptBudget {
					t.Fatalf("attempt cookies take %d bytes of the Cookie header after %d starts, budget %d", got, i+1, attemptBudget)
				}
			}
			t.Logf("return paths of %d bytes: %d attempt cookies, %d bytes", n, len(j.values), len(j.header()))
		})
	}
	rec := httptest.NewRecorder()
	a := attempt("s", c.t)
	a.ReturnTo = "/" + strings.Repeat("p", MaxReturnToBytes)
	if err := m.StartAttempt(rec, httptest.NewRequest("GET", "/", nil), a); !errors.Is(err, errs.ErrCookieTooLarge) || len(rec.Header()) != 0 {
		t.Errorf("a return path over %d bytes: %v, headers %v; want ErrCookieTooLarge and nothing written", MaxReturnToBytes, err, rec.Header())
	}
}

func TestAttemptCodecRejectsMalformed(t *testing.T) {
	good, err := attemptSerializer{}.Serialize(&Attempt{State: "s", Nonce: "n", ReturnTo: "/", Started: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"empty":                     {},
		"bad version":               append([]byte{9}, good[1:]...),
		"truncated":                 good[:len(good)-1],
		"trailing bytes":            append(bytes.Clone(good), 0),
		"no state":                  {attemptV1, 0, 0, 0, 0, 0},
		"long return":               appendString([]byte{attemptV1, 1, 's', 0, 0}, strings.Repeat("p", MaxReturnToBytes+1)),
		"v2 without step-up fields": append([]byte{attemptV2}, good[1:]...),
		"v2, max_age too large": func() []byte {
			b := append([]byte{attemptV2}, good[1:]...)
			b = binary.AppendUvarint(b, maxStepUpSeconds+1)
			return appendString(b, "sub")
		}(),
		"v2, subject too long": func() []byte {
			b := append([]byte{attemptV2}, good[1:]...)
			b = binary.AppendUvarint(b, 300)
			return appendString(b, strings.Repeat("s", maxField+1))
		}(),
	}
	for name, b := range tests {
		var a Attempt
		if err := (attemptSerializer{}).Deserialize(b, &a); err == nil {
			t.Errorf("%s: Deserialize(%x) accepted malformed data: %+v", name, b, a)
		}
	}
}

// A step-up attempt keeps its max_age and expected subject; a plain one is
// still written as version 1, and a max_age that is not whole seconds is
// refused rather than rounded.
func TestAttemptCodecStepUp(t *testing.T) {
	base := Attempt{State: "s", Nonce: "n", ReturnTo: "/admin", Started: time.Unix(1_800_000_000, 0)}
	for _, a := range []Attempt{
		base,
		func() Attempt { a := base; a.MaxAge = 5 * time.Minute; a.Subject = "user-1"; return a }(),
		func() Attempt { a := base; a.MaxAge = time.Second; return a }(),
	} {
		b, err := attemptSerializer{}.Serialize(&a)
		if err != nil {
			t.Fatal(err)
		}
		if want := byte(attemptV1); a.MaxAge > 0 {
			if b[0] != attemptV2 {
				t.Errorf("a step-up attempt written as version %d", b[0])
			}
		} else if b[0] != want {
			t.Errorf("a plain attempt written as version %d, want %d", b[0], want)
		}
		var got Attempt
		if err := (attemptSerializer{}).Deserialize(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("round trip: got %+v, want %+v", got, a)
		}
	}
	bad := base
	bad.MaxAge = 1500 * time.Millisecond
	if _, err := (attemptSerializer{}).Serialize(&bad); err == nil {
		t.Error("a max_age of 1.5 s was serialized")
	}
}

func FuzzAttemptCodec(f *testing.F) {
	good, _ := attemptSerializer{}.Serialize(&Attempt{State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/x", Started: time.Unix(1_800_000_000, 0)})
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Attempt
		if err := (attemptSerializer{}).Deserialize(b, &a); err != nil {
			return
		}
		again, err := attemptSerializer{}.Serialize(&a)
		if err != nil {
			t.Fatal(err)
		}
		var a2 Attempt
		if err := (attemptSerializer{}).Deserialize(again, &a2); err != nil || !reflect.DeepEqual(a2, a) {
			t.Fatalf("re-encoded attempt does not decode to itself: %+v, %v", a2, err)
		}
	})
}
