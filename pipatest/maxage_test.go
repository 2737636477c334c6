package pipatest_test

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/pipatest"
)

// max_age must be a non-negative integer (OpenID Connect Core 3.1.2.1);
// anything else is an invalid_request.
func TestAuthorizeRefusesMalformedMaxAge(t *testing.T) {
	t.Parallel()
	s := pipatest.NewServer()
	defer s.Close()
	for _, v := range []string{"", "-1", "1.5", "01", "abc", "99999999999"} {
		p := authParams(pipatest.DefaultClientID)
		p.Set("max_age", v)
		status, loc, body := authorize(t, s, p)
		if status != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("max_age=%q: %d %v %s, want a redirect with error=invalid_request", v, status, loc, body)
		}
	}
	p := authParams(pipatest.DefaultClientID)
	p.Set("max_age", "0")
	code(t, s, p) // 0 is valid: sign in now
}

// A provider session older than max_age signs the user in again (a new
// auth_time and sid); IgnoreMaxAge keeps the old one, as providers that
// ignore max_age do.
func TestAuthorizeHonoursMaxAge(t *testing.T) {
	t.Parallel()
	for _, ignore := range []bool{false, true} {
		s := pipatest.NewServer()
		defer s.Close()
		now := time.Unix(1_900_000_000, 0)
		s.SetClock(func() time.Time { return now })
		s.SetBehavior(pipatest.Behavior{IgnoreMaxAge: ignore})
		jar, _ := cookiejar.New(nil)
		c := noRedirects(s.Client())
		c.Jar = jar
		authTime := func(maxAge string) int64 {
			t.Helper()
			p := authParams(pipatest.DefaultClientID)
			if maxAge != "" {
				p.Set("max_age", maxAge)
			}
			resp, err := c.Get(s.URL + "/authorize?" + p.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := resp.Location()
			if err != nil || !strings.HasPrefix(loc.String(), testRedirect) {
				t.Fatalf("authorize: %d %v %v", resp.StatusCode, loc, err)
			}
			m := exchange(t, s, pipatest.DefaultClientID, pipatest.DefaultClientSecret, loc.Query().Get("code"))
			c, _ := rawClaims(t, str(m["id_token"]))
			at, err := strconv.ParseInt(fmt.Sprint(c["auth_time"]), 10, 64)
			if err != nil {
				t.Fatalf("auth_time in %v: %v", c, err)
			}
			return at
		}
		first := authTime("")
		now = now.Add(10 * time.Minute)
		if got := authTime("3600"); got != first {
			t.Errorf("ignore=%v: max_age=3600 after 10 minutes: auth_time %d, want the first sign-in's %d", ignore, got, first)
		}
		want := now.Unix()
		if ignore {
			want = first
		}
		if got := authTime("300"); got != want {
			t.Errorf("ignore=%v: max_age=300 after 10 minutes: auth_time %d, want %d", ignore, got, want)
		}
	}
}
