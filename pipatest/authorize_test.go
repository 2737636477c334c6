package pipatest_test

// Tests of the authorization endpoint (helpers in helpers_test.go): the
// requests it refuses, where it redirects, and the interactive consent page.

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/pipatest"
)

func TestAuthorizeRejections(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "strict", Secret: "x", RedirectURLs: []string{"https://strict.example/cb"}})

	type tc struct {
		name    string
		edit    func(v url.Values)
		page    bool   // 400 page, no redirect
		wantErr string // error code of the redirect
		noState bool
	}
	tests := []tc{
		{name: "unknown client", edit: func(v url.Values) { v.Set("client_id", "nobody") }, page: true},
		{name: "missing client_id", edit: func(v url.Values) { v.Del("client_id") }, page: true},
		{name: "repeated client_id", edit: func(v url.Values) { v.Add("client_id", pipatest.DefaultClientID) }, page: true},
		{name: "unregistered redirect_uri", edit: func(v url.Values) { v.Set("client_id", "strict") }, page: true},
		{name: "registered redirect_uri plus a query", edit: func(v url.Values) {
			v.Set("client_id", "strict")
			v.Set("redirect_uri", "https://strict.example/cb?x=1")
		}, page: true},
		{name: "missing redirect_uri", edit: func(v url.Values) { v.Del("redirect_uri") }, page: true},
		{name: "repeated redirect_uri", edit: func(v url.Values) { v.Add("redirect_uri", testRedirect) }, page: true},
		{name: "javascript redirect_uri", edit: func(v url.Values) { v.Set("redirect_uri", "javascript:alert(1)") }, page: true},
		{name: "relative redirect_uri", edit: func(v url.Values) { v.Set("redirect_uri", "/callback") }, page: true},
		{name: "redirect_uri with fragment", edit: func(v url.Values) { v.Set("redirect_uri", testRedirect+"#frag") }, page: true},
		{name: "missing nonce with openid", edit: func(v url.Values) { v.Del("nonce") }, wantErr: "invalid_request"},
		{name: "response_type token", edit: func(v url.Values) { v.Set("response_type", "token") }, wantErr: "unsupported_response_type"},
		{name: "response_type code id_token", edit: func(v url.Values) { v.Set("response_type", "code id_token") }, wantErr: "unsupported_response_type"},
		{name: "missing response_type", edit: func(v url.Values) { v.Del("response_type") }, wantErr: "invalid_request"},
		{name: "unknown scope only", edit: func(v url.Values) { v.Set("scope", "profile") }, wantErr: "invalid_scope"},
		{name: "missing scope", edit: func(v url.Values) { v.Del("scope") }, wantErr: "invalid_scope"},
		{name: "PKCE plain", edit: func(v url.Values) {
			v.Set("code_challenge", pkce(strings.Repeat("v", 43)))
			v.Set("code_challenge_method", "plain")
		}, wantErr: "invalid_request"},
		{name: "PKCE without method", edit: func(v url.Values) { v.Set("code_challenge", pkce(strings.Repeat("v", 43))) }, wantErr: "invalid_request"},
		{name: "PKCE method without challenge", edit: func(v url.Values) { v.Set("code_challenge_method", "S256") }, wantErr: "invalid_request"},
		{name: "PKCE malformed challenge", edit: func(v url.Values) {
			v.Set("code_challenge", "short")
			v.Set("code_challenge_method", "S256")
		}, wantErr: "invalid_request"},
		{name: "repeated scope", edit: func(v url.Values) { v.Add("scope", "openid") }, wantErr: "invalid_request"},
		{name: "repeated nonce", edit: func(v url.Values) { v.Add("nonce", "other") }, wantErr: "invalid_request"},
		{name: "repeated state", edit: func(v url.Values) { v.Add("state", "other") }, wantErr: "invalid_request", noState: true},
		{name: "request object", edit: func(v url.Values) { v.Set("request", "eyJ.x.y") }, wantErr: "request_not_supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := authParams(pipatest.DefaultClientID)
			tc.edit(v)
			status, loc, body := authorize(t, s, v)
			if tc.page {
				if status != http.StatusBadRequest || loc != nil {
					t.Fatalf("status %d, location %v; want 400 page", status, loc)
				}
				if !strings.Contains(body, "<title>PiPA — Bad request</title>") {
					t.Errorf("page: %s", body)
				}
				return
			}
			if status != http.StatusFound || loc == nil {
				t.Fatalf("status %d, location %v, body %s", status, loc, body)
			}
			q := loc.Query()
			if q.Get("error") != tc.wantErr || q.Has("code") || q.Get("error_description") == "" || q.Get("iss") != s.URL {
				t.Errorf("redirect %s, want error=%s", loc, tc.wantErr)
			}
			if wantState := map[bool]string{false: testState, true: ""}[tc.noState]; q.Get("state") != wantState {
				t.Errorf("state %q, want %q", q.Get("state"), wantState)
			}
		})
	}

	t.Run("method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, s.URL+"/authorize", nil)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("PUT: status %d", resp.StatusCode)
		}
	})
	t.Run("malformed query", func(t *testing.T) {
		resp, _ := get(t, s, s.URL+"/authorize?client_id=%zz")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestAuthorizeRedirect(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.RegisterClient(pipatest.Client{ID: "strict", Secret: "x", RedirectURLs: []string{"https://strict.example/cb?tenant=a+b&x=1"}})

	v := authParams("strict")
	v.Set("redirect_uri", "https://strict.example/cb?tenant=a+b&x=1")
	v.Set("scope", "email") // plain OAuth: no nonce needed
	v.Del("nonce")
	status, loc, _ := authorize(t, s, v)
	if status != http.StatusFound || loc == nil {
		t.Fatalf("status %d", status)
	}
	if !strings.HasPrefix(loc.String(), "https://strict.example/cb?tenant=a+b&x=1&") {
		t.Errorf("redirect %s does not keep the registered query", loc)
	}
	q := loc.Query()
	if q.Get("tenant") != "a b" || q.Get("x") != "1" || q.Get("code") == "" || q.Get("state") != testState || q.Get("iss") != s.URL {
		t.Errorf("redirect %s", loc)
	}

	// No state: none in the redirect.
	v.Del("state")
	_, loc, _ = authorize(t, s, v)
	if loc.Query().Has("state") {
		t.Errorf("redirect %s has a state", loc)
	}

	// AuthorizeError.
	s.SetBehavior(pipatest.Behavior{AuthorizeError: "access_denied"})
	v.Set("state", testState)
	_, loc, _ = authorize(t, s, v)
	q = loc.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != testState || q.Has("code") || q.Get("iss") != s.URL || q.Get("error_description") == "" {
		t.Errorf("AuthorizeError redirect %s", loc)
	}
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	idRE     = regexp.MustCompile(`\bid="([^"]*)"`)
)

// consentForm loads the interactive page and returns the hidden fields of
// its form.
func consentForm(t *testing.T, s *pipatest.Server, params url.Values) (url.Values, string) {
	t.Helper()
	resp, body := get(t, s, s.URL+"/authorize?"+params.Encode())
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if form.Get("csrf") == "" {
		t.Fatalf("no CSRF token in %s", body)
	}
	return form, body
}

func TestInteractive(t *testing.T) {
	s := pipatest.NewServer()
	defer s.Close()
	s.SetInteractive(true)
	const id, secret = pipatest.DefaultClientID, pipatest.DefaultClientSecret
	v := verifier(t, s, id)

	t.Run("page", func(t *testing.T) {
		_, body := consentForm(t, s, authParams(id))
		var ids []string
		for _, m := range idRE.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		for _, want := range []string{"user-alice", "user-bob", "email", "share-email", "approve", "deny"} {
			if !slices.Contains(ids, want) {
				t.Errorf("no element with id %q (ids %v)", want, ids)
			}
		}
		for _, want := range []string{
			"<title>PiPA — sign in</title>",
			`<label for="user-alice">`, `<label for="email">`, `<label for="share-email">`,
			`id="user-alice" name="user" value="alice" checked>`,
			`id="share-email" name="share_email" value="on" checked>`,
			"Share my email address with <strong>" + id + "</strong>",
			`<form method="post" action="authorize">`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})

	t.Run("hostile client_id and state are escaped", func(t *testing.T) {
		const evilID = `<script>alert("id")</script>`
		const evilState = `"><script>alert('state')</script>`
		s.RegisterClient(pipatest.Client{ID: evilID, Secret: "x"})
		p := authParams(evilID)
		p.Set("state", evilState)
		form, body := consentForm(t, s, p)
		if strings.Contains(body, "<script") {
			t.Fatalf("unescaped markup in page:\n%s", body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;") {
			t.Errorf("escaped client id not shown:\n%s", body)
		}
		if form.Get("client_id") != evilID || form.Get("state") != evilState {
			t.Errorf("hidden fields %v", form)
		}
		// And the values survive the round trip.
		form.Set("user", "alice")
		form.Set("action", "approve")
		resp, _ := postForm(t, s, s.URL+"/authorize", form)
		loc, err := resp.Location()
		if err != nil || loc.Query().Get("state") != evilState || loc.Query().Get("code") == "" {
			t.Errorf("redirect %v, %v", loc, err)
		}
	})

	tests := []struct {
		name      string
		edit      func(form url.Values)
		wantErr   string // error in the redirect
		wantUser  string
		wantEmail string
	}{
		{"approve alice", func(f url.Values) { f.Set("user", "alice"); f.Set("share_email", "on") }, "", "alice", "alice@example.com"},
		{"approve alice without sharing", func(f url.Values) { f.Set("user", "alice") }, "", "alice", ""},
		{"approve bob sharing", func(f url.Values) { f.Set("user", "bob"); f.Set("share_email", "on") }, "", "bob", "bob@example.org"},
		{"typed email", func(f url.Values) {
			f.Set("user", "bob")
			f.Set("email", "carol@example.net")
			f.Set("share_email", "on")
		}, "", "carol@example.net", "carol@example.net"},
		{"deny", func(f url.Values) { f.Set("user", "alice"); f.Set("action", "deny") }, "access_denied", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form, _ := consentForm(t, s, authParams(id))
			form.Set("action", "approve")
			tc.edit(form)
			resp, body := postForm(t, s, s.URL+"/authorize", form)
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			q := loc.Query()
			if q.Get("state") != testState || q.Get("iss") != s.URL || !strings.HasPrefix(loc.String(), testRedirect+"?") {
				t.Errorf("redirect %s", loc)
			}
			if tc.wantErr != "" {
				if q.Get("error") != tc.wantErr || q.Has("code") {
					t.Errorf("redirect %s, want error %s", loc, tc.wantErr)
				}
			} else {
				m := exchange(t, s, id, secret, q.Get("code"))
				idt, err := verify(t, v, s, str(m["id_token"]))
				if err != nil {
					t.Fatal(err)
				}
				var c struct {
					Email         string `json:"email"`
					EmailVerified bool   `json:"email_verified"`
				}
				idt.Claims(&c)
				if idt.Subject != s.Subject(id, tc.wantUser) || c.Email != tc.wantEmail || (c.Email != "" && !c.EmailVerified) {
					t.Errorf("sub %q (want that of %s), email %q verified %v, want %q", idt.Subject, tc.wantUser, c.Email, c.EmailVerified, tc.wantEmail)
				}
			}
			// The form is single use.
			resp, _ = postForm(t, s, s.URL+"/authorize", form)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Errorf("reused form: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}

	refusals := []struct {
		name       string
		edit       func(form url.Values)
		wantStatus int
	}{
		{"wrong CSRF token", func(f url.Values) { f.Set("csrf", "WRONG") }, http.StatusForbidden},
		{"no CSRF token", func(f url.Values) { f.Del("csrf") }, http.StatusForbidden},
		{"tampered redirect_uri", func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") }, http.StatusBadRequest},
		{"tampered scope", func(f url.Values) { f.Set("scope", "openid") }, http.StatusBadRequest},
		{"dropped nonce", func(f url.Values) { f.Del("nonce") }, http.StatusBadRequest},
		{"repeated field", func(f url.Values) { f.Add("user", "bob") }, http.StatusBadRequest},
		{"unknown user", func(f url.Values) { f.Set("user", "mallory") }, http.StatusBadRequest},
		{"bad email", func(f url.Values) { f.Set("email", "Carol <carol@example.net>") }, http.StatusBadRequest},
		{"no action", func(f url.Values) { f.Del("action") }, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			form, _ := consentForm(t, s, authParams(id))
			form.Set("user", "alice")
			form.Set("action", "approve")
			tc.edit(form)
			resp, body := postForm(t, s, s.URL+"/authorize", form)
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q, want %d: %s", resp.StatusCode, resp.Header.Get("Location"), tc.wantStatus, body)
			}
		})
	}

	t.Run("expired form", func(t *testing.T) {
		form, _ := consentForm(t, s, authParams(id))
		form.Set("user", "alice")
		form.Set("action", "approve")
		pipatest.SetNow(s, func() time.Time { return time.Now().Add(time.Hour) })
		defer pipatest.SetNow(s, time.Now)
		resp, _ := postForm(t, s, s.URL+"/authorize", form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d", resp.StatusCode)
		}
	})

	t.Run("invalid request is not shown", func(t *testing.T) {
		p := authParams(id)
		p.Del("nonce")
		status, loc, _ := authorize(t, s, p)
		if status != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("status %d, location %v", status, loc)
		}
	})
}
