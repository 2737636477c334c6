package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/pipaauth/pipaauth/internal/errs"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func keys(n int) [][]byte {
	var k [][]byte
	for range n {
		k = append(k, securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32))
	}
	return k
}

func newManager(t *testing.T, c *clock, mod func(*Options)) *Manager {
	t.Helper()
	opt := Options{
		Name:       "__Host-test",
		Secure:     true,
		KeyPairs:   keys(1),
		Lifetime:   12 * time.Hour,
		AttemptTTL: 10 * time.Minute,
		Now:        c.now,
	}
	if mod != nil {
		mod(&opt)
	}
	m, err := NewManager(opt)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// roundTrip saves d with m and returns a request carrying the cookie.
func roundTrip(t *testing.T, m *Manager, d *Data) *http.Request {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := m.Save(rec, nil, d); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return withCookies(rec.Result().Cookies())
}

func withCookies(cs []*http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range cs {
		r.AddCookie(c)
	}
	return r
}

func sample(now time.Time) *Data {
	return &Data{
		User:     User{ID: "user-1", Email: "a@example.com", EmailVerified: true},
		LoginAt:  now,
		LastSeen: now,
	}
}

func TestCodecRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		d    *Data
	}{
		{"empty", &Data{}},
		{"full", sample(now)},
		{"tokens", func() *Data {
			d := sample(now)
			d.Tokens = &Tokens{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", Expiry: now.Add(time.Hour)}
			return d
		}()},
		{"auth_time, ID token, sid", func() *Data {
			d := sample(now)
			d.User.AuthTime = now.Add(-time.Minute)
			d.IDToken = strings.Repeat("j", maxIDToken)
			d.SID = "sid-1"
			return d
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := serializer{}.Serialize(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			var got Data
			if err := (serializer{}).Deserialize(b, &got); err != nil {
				t.Fatal(err)
			}
			want, _ := serializer{}.Serialize(&got)
			if !bytes.Equal(b, want) {
				t.Errorf("round trip changed the data:\n got %x\nwant %x", want, b)
			}
			if got.User != tt.d.User || !got.LoginAt.Equal(tt.d.LoginAt) || got.IDToken != tt.d.IDToken || got.SID != tt.d.SID {
				t.Errorf("got %+v, want %+v", got, tt.d)
			}
		})
	}
}

func TestCodecRejectsMalformed(t *testing.T) {
	good, _ := serializer{}.Serialize(sample(time.Unix(1_800_000_000, 0)))
	tests := map[string][]byte{
		"empty":          {},
		"bad version":    append([]byte{formatV5 + 1}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(bytes.Clone(good), 0),
		"bad bool":       func() []byte { b := bytes.Clone(good); b[len(b)-1] = 7; return b }(),
		"huge length":    {formatV2, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"v1, too many attempts": func() []byte {
			b := []byte{formatV1, 0, 0, 0, 0, 0}
			return append(binary.AppendUvarint(b, maxPending+1), 0)
		}(),
		"ID token too long": func() []byte {
			b := []byte{formatV2, 0, 0, 0, 0, 0, 0, 0}
			return appendString(b, strings.Repeat("j", maxIDToken+1))
		}(),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			var d Data
			if err := (serializer{}).Deserialize(b, &d); err == nil {
				t.Errorf("Deserialize(%x) accepted malformed data: %+v", b, d)
			}
		})
	}
}

// A session written before attempts left the session (format 1) still
// loads: the user stays logged in and the attempts are dropped.
func TestCodecReadsV1(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := []byte{formatV1}
	b = appendTime(b, now)
	b = appendTime(b, now)
	b = appendString(b, "user-1")
	b = appendString(b, "a@example.com")
	b = appendBool(b, true)
	b = binary.AppendUvarint(b, 2)
	for _, st := range []string{"s1", "s2"} {
		b = appendString(b, st)
		b = appendString(b, "n")
		b = appendString(b, "v")
		b = appendString(b, "/admin")
		b = appendTime(b, now)
	}
	b = appendBool(b, true)
	b = appendString(b, "at")
	b = appendString(b, "rt")
	b = appendString(b, "Bearer")
	b = appendTime(b, now.Add(time.Hour))
	var d Data
	if err := (serializer{}).Deserialize(b, &d); err != nil {
		t.Fatalf("a version 1 session does not decode: %v", err)
	}
	want := User{ID: "user-1", Email: "a@example.com", EmailVerified: true}
	if d.User != want || !d.LoginAt.Equal(now) || d.Tokens == nil || d.Tokens.RefreshToken != "rt" {
		t.Errorf("decoded %+v, want user %+v logged in at %v with tokens", d, want, now)
	}
	again, _ := serializer{}.Serialize(&d)
	if again[0] != formatV5 {
		t.Errorf("re-encoded as version %d, want %d", again[0], formatV5)
	}
	// Cut inside the attempts: refused.
	if err := (serializer{}).Deserialize(b[:20], &d); err == nil {
		t.Error("a truncated version 1 session decoded")
	}
}

func FuzzCodec(f *testing.F) {
	good, _ := serializer{}.Serialize(sample(time.Unix(1_800_000_000, 0)))
	f.Add(good)
	f.Add([]byte{formatV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Data
		if err := (serializer{}).Deserialize(b, &d); err != nil {
			return
		}
		again, err := serializer{}.Serialize(&d)
		if err != nil {
			t.Fatal(err)
		}
		var d2 Data
		if err := (serializer{}).Deserialize(again, &d2); err != nil {
			t.Fatalf("re-encoded data does not decode: %v", err)
		}
	})
}

func TestLoadSave(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, nil)
	r := roundTrip(t, m, sample(c.t))
	d, err := m.Load(r)
	if err != nil || !d.LoggedIn() || d.User.Email != "a@example.com" {
		t.Fatalf("Load = %+v, %v; want the saved session", d, err)
	}
	if d, err := m.Load(httptest.NewRequest("GET", "/", nil)); d != nil || err != nil {
		t.Errorf("Load without cookie = %+v, %v; want nil, nil", d, err)
	}
}

func TestCookieAttributes(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	rec := httptest.NewRecorder()
	if err := newManager(t, c, nil).Save(rec, nil, sample(c.t)); err != nil {
		t.Fatal(err)
	}
	h := rec.Header().Get("Set-Cookie")
	for _, want := range []string{"__Host-test=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=46800"} { // 12 h Lifetime + 1 h ExpiredGrace
		if !strings.Contains(h, want) {
			t.Errorf("Set-Cookie %q lacks %q", h, want)
		}
	}
	if strings.Contains(h, "Domain=") {
		t.Errorf("Set-Cookie %q has a Domain", h)
	}
}

func TestLoadRefuses(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, func(o *Options) { o.CacheSize = -1 })
	rec := httptest.NewRecorder()
	if err := m.Save(rec, nil, sample(c.t)); err != nil {
		t.Fatal(err)
	}
	good := rec.Result().Cookies()[0]
	tamper := func(f func(string) string) *http.Request {
		cc := *good
		cc.Value = f(cc.Value)
		return withCookies([]*http.Cookie{&cc})
	}
	other := newManager(t, c, nil)
	tests := []struct {
		name string
		r    *http.Request
		m    *Manager
	}{
		{"flipped byte", tamper(func(v string) string {
			b := []byte(v)
			b[len(b)/2] ^= 1
			return string(b)
		}), m},
		{"truncated", tamper(func(v string) string { return v[:len(v)-4] }), m},
		{"garbage", tamper(func(string) string { return "not-a-cookie" }), m},
		{"unknown keys", withCookies([]*http.Cookie{good}), other},
		{"too long", tamper(func(v string) string { return v + strings.Repeat("A", 5000) }), m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.m.Load(tt.r)
			if d != nil || !errors.Is(err, ErrInvalid) {
				t.Errorf("Load = %+v, %v; want nil, ErrInvalid", d, err)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name     string
		idle     time.Duration
		advance  time.Duration
		loggedIn bool
		wantErr  bool
	}{
		{name: "fresh", advance: time.Minute, loggedIn: true},
		{name: "login expired", advance: 12 * time.Hour, wantErr: true},
		{name: "login just before expiry", advance: 12*time.Hour - time.Second, loggedIn: true},
		{name: "idle timeout", idle: 30 * time.Minute, advance: 31 * time.Minute, wantErr: true},
		{name: "within idle timeout", idle: 30 * time.Minute, advance: 29 * time.Minute, loggedIn: true},
		{name: "login from the future", advance: -2 * time.Minute, wantErr: true},
		// The exact edges: a limit reached is expired, a nanosecond short
		// of it is not.
		{name: "login at expiry", advance: 12 * time.Hour, wantErr: true},
		{name: "login a nanosecond before expiry", advance: 12*time.Hour - 1, loggedIn: true},
		{name: "idle at the timeout", idle: 30 * time.Minute, advance: 30 * time.Minute, wantErr: true},
		{name: "idle a nanosecond short", idle: 30 * time.Minute, advance: 30*time.Minute - 1, loggedIn: true},
		{name: "login a minute ahead", advance: -time.Minute, loggedIn: true},
		{name: "login a minute and a nanosecond ahead", advance: -time.Minute - 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{start}
			m := newManager(t, c, func(o *Options) { o.IdleTimeout = tt.idle })
			r := roundTrip(t, m, sample(start))
			c.t = start.Add(tt.advance)
			d, err := m.Load(r)
			if tt.wantErr {
				if d != nil || !errors.Is(err, ErrInvalid) {
					t.Errorf("Load = %+v, %v; want nil, ErrInvalid", d, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if d.LoggedIn() != tt.loggedIn {
				t.Errorf("LoggedIn = %v, want %v", d.LoggedIn(), tt.loggedIn)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	old := keys(1)
	oldM := newManager(t, c, func(o *Options) { o.KeyPairs = old })
	r := roundTrip(t, oldM, sample(c.t))
	rotated := newManager(t, c, func(o *Options) { o.KeyPairs = append(keys(1), old...) })
	d, err := rotated.Load(r)
	if err != nil || !d.LoggedIn() {
		t.Fatalf("a cookie sealed with the old pair does not open after rotation: %v", err)
	}
	// New cookies are sealed with the new (first) pair: the old manager alone
	// cannot open them.
	r2 := roundTrip(t, rotated, d.Clone())
	if _, err := oldM.Load(r2); !errors.Is(err, ErrInvalid) {
		t.Errorf("old keys opened a cookie sealed with the new pair: %v", err)
	}
}

func TestCookieSizeBudget(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, nil)
	d := &Data{
		User:    User{ID: strings.Repeat("s", 255), Email: strings.Repeat("e", 240) + "@example.com", EmailVerified: true, AuthTime: c.t},
		LoginAt: c.t, LastSeen: c.t, SID: strings.Repeat("i", 64),
	}
	rec := httptest.NewRecorder()
	if err := m.Save(rec, nil, d); err != nil {
		t.Fatalf("the largest session the package makes does not fit: %v", err)
	}
	if n := len(rec.Header().Get("Set-Cookie")); n > MaxCookieBytes {
		t.Fatalf("Set-Cookie is %d bytes", n)
	}
	// Tokens go to cookies of their own, which share the Cookie header
	// with the session cookie and the login attempts.
	d.Tokens = &Tokens{AccessToken: strings.Repeat("a", 3000), RefreshToken: strings.Repeat("r", 500)}
	rec = httptest.NewRecorder()
	err := m.Save(rec, nil, d)
	if !errors.Is(err, errs.ErrCookieTooLarge) {
		t.Fatalf("Save of an oversized session: %v, want ErrCookieTooLarge", err)
	}
	if h := rec.Header().Get("Set-Cookie"); h != "" {
		t.Errorf("a failed Save still wrote Set-Cookie %q", h)
	}
}

func TestCheckKeys(t *testing.T) {
	k32 := securecookie.GenerateRandomKey(32)
	tests := []struct {
		name string
		keys [][]byte
		want string
	}{
		{"none", nil, "empty"},
		{"odd", [][]byte{k32}, "complete pairs"},
		{"short hash key", [][]byte{make([]byte, 16), k32}, "at least 32"},
		{"bad block key", [][]byte{k32, make([]byte, 20)}, "16, 24 or 32"},
		{"nil block key", [][]byte{k32, nil}, "16, 24 or 32"},
		{"same key twice", [][]byte{k32, k32}, "independent"},
		{"bad second pair", append(keys(1), k32, make([]byte, 8)), "SessionKeys[3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKeys(tt.keys)
			if !errors.Is(err, errs.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckKeys = %v, want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
	if err := CheckKeys(keys(2)); err != nil {
		t.Errorf("CheckKeys(two good pairs) = %v", err)
	}
}

func TestCookieValue(t *testing.T) {
	tests := []struct {
		header []string
		want   string
		ok     bool
	}{
		{[]string{"a=1; __Host-test=v; b=2"}, "v", true},
		{[]string{"a=1", "__Host-test=\"q\""}, "q", true},
		{[]string{"x__Host-test=v"}, "", false},
		{[]string{"__Host-test="}, "", false},
		{[]string{"__Host-test=first; __Host-test=second"}, "first", true},
		{nil, "", false},
		{[]string{"__Host-test=v"}, "v", true},
		{[]string{"  __Host-test=v  ;b=2"}, "v", true},
		{[]string{"a=1;\t__Host-test=v\t"}, "v", true},
		{[]string{"a=1;;; __Host-test=v;"}, "v", true},
		{[]string{"__Host-test =v"}, "", false},               // a space before '=' makes another name
		{[]string{"__Host-tes=v; __Host-test2=w"}, "", false}, // prefixes and extensions of the name
		{[]string{"__Host-test"}, "", false},
		{[]string{"a=__Host-test=v"}, "", false},
		{[]string{"__Host-test=\""}, "\"", true}, // one quote is not a quoted value
		{[]string{"a=1;", "__Host-test=v"}, "v", true},
	}
	for _, tt := range tests {
		got, ok := cookieValue(http.Header{"Cookie": tt.header}, "__Host-test")
		if got != tt.want || ok != tt.ok {
			t.Errorf("cookieValue(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

// Whatever Save accepts, another instance (no cache) must read back: the
// encoder enforces the decoder's limits.
func TestSaveOnlyWhatLoads(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	kp := keys(1)
	writer := newManager(t, c, func(o *Options) { o.KeyPairs = kp })
	reader := newManager(t, c, func(o *Options) { o.KeyPairs = kp; o.CacheSize = -1 })
	d := sample(c.t)
	d.Tokens = &Tokens{AccessToken: strings.Repeat("a", 2100), TokenType: "Bearer"}
	r := roundTrip(t, writer, d)
	got, err := reader.Load(r)
	if err != nil {
		t.Fatalf("a session with a 2100-byte token saved by one instance does not load in another: %v", err)
	}
	tok, err := reader.LoadTokens(r, got)
	if err != nil || tok == nil || len(tok.AccessToken) != 2100 {
		t.Fatalf("a 2100-byte token saved by one instance does not load in another: %v", err)
	}
	d.User.Email = strings.Repeat("e", maxField+1)
	if err := writer.Save(httptest.NewRecorder(), nil, d); err == nil {
		t.Fatal("Save accepted a field the decoder refuses")
	}
	if _, err := (serializer{}).Serialize(&Data{IDToken: strings.Repeat("j", maxIDToken+1)}); err == nil {
		t.Fatal("Serialize accepted an ID token longer than the decoder does")
	}
}

// FuzzCookieValue checks cookieValue against net/http's own parser on the
// Cookie headers both read the same way: well-formed pairs of a token name
// and a value of cookie-octets, separated by "; ".
func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; __Host-test=v; b=2")
	f.Add("__Host-test=\"q\"; __Host-test=r")
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": {header}}}
		got, ok := cookieValue(r.Header, "__Host-test")
		if ok && got == "" {
			t.Fatalf("cookieValue(%q) = \"\", true", header)
		}
		for _, part := range strings.Split(header, "; ") {
			name, value, found := strings.Cut(part, "=")
			if !found || name == "" || strings.ContainsAny(name, " \t\";,\\") || strings.ContainsAny(value, " \t;,\\\"") || !isPrintableASCII(part) {
				return // not a pair both read alike
			}
		}
		c, err := r.Cookie("__Host-test")
		if err != nil {
			if ok {
				t.Fatalf("cookieValue(%q) = %q, net/http finds none", header, got)
			}
			return
		}
		if c.Value != "" && (!ok || got != c.Value) {
			t.Fatalf("cookieValue(%q) = %q, %v; net/http reads %q", header, got, ok, c.Value)
		}
	})
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// elapsed agrees with time.Time.Sub on the times a session may hold, from
// nanoseconds apart to the saturation of Duration either way.
func TestElapsed(t *testing.T) {
	base := time.Date(2026, 12, 7, 15, 0, 0, 500, time.UTC)
	for _, d := range []time.Duration{0, 1, -1, time.Second - 1, time.Second + 1, -time.Second - 1, time.Minute, -time.Minute - 1,
		12 * time.Hour, 12*time.Hour - 1, 24 * 365 * time.Hour, math.MaxInt64, math.MinInt64, math.MaxInt64 - 999, math.MinInt64 + 999} {
		now := base.Add(d)
		if got, want := elapsed(now, base), now.Sub(base); got != want {
			t.Errorf("elapsed(base%+v, base) = %v, want %v", d, got, want)
		}
	}
	for _, pair := range [][2]time.Time{
		{time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		{base.AddDate(600, 0, 0), base},
		{time.Now(), base}, // a monotonic reading on one side
	} {
		if got, want := elapsed(pair[0], pair[1]), pair[0].Sub(pair[1]); got != want && pair[0].Round(0).Sub(pair[1]) != got {
			t.Errorf("elapsed(%v, %v) = %v, want %v", pair[0], pair[1], got, want)
		}
	}
}

// cookieValues reads pairs as cookieValue does: spaces and tabs around a
// pair are trimmed, nothing else, so a cookie whose name starts with
// another blank (which net/http passes through) is another cookie.
func TestCookieValues(t *testing.T) {
	h := http.Header{"Cookie": {"\u00a0side=tossed; side=\"real\"; \tside=second\t;side=", "side=third"}}
	if got, want := cookieValues(h, "side", 3), []string{"real", "second", "third"}; !slices.Equal(got, want) {
		t.Errorf("cookieValues = %q, want %q", got, want)
	}
	if got := cookieValues(h, "side", 1); !slices.Equal(got, []string{"real"}) {
		t.Errorf("cookieValues(max 1) = %q, want [real]", got)
	}
}
