package pipaauth_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

func formPostSetup(store *memStore) setup {
	s := setupFor(store)
	inner := s.configure
	s.configure = func(cfg *pipaauth.Config) {
		if inner != nil {
			inner(cfg)
		}
		cfg.ResponseMode = "form_post"
	}
	return s
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	formField  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// formPostResponse visits PiPA's authorization endpoint, which answers
// with its auto-submitting page, and returns the form: where it posts and
// what.
func (b *browser) formPostResponse(authURL string) (string, url.Values) {
	b.t.Helper()
	r := b.get(authURL)
	m := formAction.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		b.fatal("GET %s: %d, want PiPA's form_post page\n%s", authURL, r.status, r.body)
	}
	form := url.Values{}
	for _, f := range formField.FindAllStringSubmatch(r.body, -1) {
		form.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	if c := form.Get("code"); c != "" {
		b.h.secrets.addCode(c)
	}
	return html.UnescapeString(m[1]), form
}

// postForm posts form to target as a browser submitting PiPA's page does:
// a top-level cross-site navigation from PiPA's origin, unless header
// (name, value pairs; an empty value deletes) says otherwise.
func (b *browser) postForm(target string, form url.Values, header ...string) *response {
	b.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		b.fatal("POST %s: %v", target, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.h.provider.URL)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.fatal("POST %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := &response{status: resp.StatusCode, header: resp.Header, body: string(body)}
	b.h.checkResponse(b.errorf, http.MethodPost, target, r)
	return r
}

func TestFormPostLogin(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var store *memStore
			if mode.store != nil {
				store = mode.store()
			}
			h := newHarness(t, formPostSetup(store))
			b := h.app.newBrowser(t)
			r := b.get("/private")
			auth := r.location()
			if q := query(t, auth); q.Get("response_mode") != "form_post" {
				t.Fatalf("authorization request %q lacks response_mode=form_post", auth)
			}
			attempts := r.attemptCookies(h.app.cookieName)
			if len(attempts) != 1 || attempts[0].SameSite != http.SameSiteNoneMode || !attempts[0].Secure {
				t.Errorf("attempt cookies %v, want one SameSite=None; Secure (sent on PiPA's cross-site POST)", r.header.Values("Set-Cookie"))
			}
			action, form := b.formPostResponse(auth)
			if action != h.app.cfg.RedirectURL || form.Get("code") == "" || form.Get("state") == "" {
				t.Fatalf("PiPA's page posts %v to %q", form, action)
			}
			r = b.postForm(action, form)
			if r.status != http.StatusSeeOther || r.location() != "/private" {
				t.Fatalf("form_post callback: %d to %q, want 303 to /private; errors %v\n%s", r.status, r.location(), h.app.takeErrors(), r.body)
			}
			if c := r.setCookie(h.app.cookieName); c == nil || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("session cookie %v, want SameSite=Lax (only the attempt cookies are None)", c)
			}
			if u := b.mustUser(); u.ID != h.subject("alice") {
				t.Errorf("user %+v, want alice", u)
			}
			// Single use: the same post again is refused, and spends no code.
			before := h.provider.TokenRequests()
			b2 := h.app.newBrowser(t)
			expectFailure(t, h, b2.postForm(action, form), http.StatusBadRequest, pipaauth.ErrInvalidState, before)
		})
	}
}

// The default mode is the query string; its attempt cookies stay Lax and a
// POST to the callback stays refused.
func TestQueryModeRefusesPost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{})
	b := h.app.newBrowser(t)
	r := b.get("/private")
	if q := query(t, r.location()); q.Has("response_mode") {
		t.Errorf("query mode sends response_mode: %q", r.location())
	}
	if a := r.attemptCookies(h.app.cookieName); len(a) != 1 || a[0].SameSite != http.SameSiteLaxMode {
		t.Errorf("attempt cookies %v, want SameSite=Lax", r.header.Values("Set-Cookie"))
	}
	cb := b.authorize(r.location())
	form := query(t, cb)
	expectFailure(t, h, b.postForm(h.app.cfg.RedirectURL, form), http.StatusMethodNotAllowed, pipaauth.ErrMethod, -1)
}

func TestFormPostRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, formPostSetup(nil))
	for _, tc := range []struct {
		name   string
		header []string
		status int
		want   error
	}{
		{"another origin", []string{"Origin", "https://evil.example"}, http.StatusForbidden, pipaauth.ErrCrossOrigin},
		{"the application's own origin", []string{"Origin", "APP"}, http.StatusForbidden, pipaauth.ErrCrossOrigin},
		{"no Origin", []string{"Origin", ""}, http.StatusForbidden, pipaauth.ErrCrossOrigin},
		{"from a frame", []string{"Sec-Fetch-Dest", "iframe"}, http.StatusForbidden, pipaauth.ErrCrossOrigin},
		{"from a script", []string{"Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"}, http.StatusForbidden, pipaauth.ErrCrossOrigin},
		{"not a form", []string{"Content-Type", "application/json"}, http.StatusUnsupportedMediaType, pipaauth.ErrInvalidCallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.app.newBrowser(t)
			action, form := b.formPostResponse(b.startLogin("/private"))
			header := append([]string(nil), tc.header...)
			for i := range header {
				if header[i] == "APP" {
					header[i] = h.app.url
				}
			}
			before := h.provider.TokenRequests()
			expectFailure(t, h, b.postForm(action, form, header...), tc.status, tc.want, before)
			b.mustBeLoggedOut()
			// The refusal came before the attempt was used: PiPA's own
			// post still logs in.
			if r := b.postForm(action, form); r.status != http.StatusSeeOther {
				t.Errorf("the genuine post after the refused one: %d; errors %v", r.status, h.app.takeErrors())
			}
		})
	}
	t.Run("Origin null", func(t *testing.T) {
		b := h.app.newBrowser(t)
		action, form := b.formPostResponse(b.startLogin("/private"))
		if r := b.postForm(action, form, "Origin", "null"); r.status != http.StatusSeeOther {
			t.Errorf("Origin null: %d, want 303; errors %v", r.status, h.app.takeErrors())
		}
	})
	t.Run("GET without a response", func(t *testing.T) {
		b := h.app.newBrowser(t)
		expectFailure(t, h, b.get("/callback"), http.StatusMethodNotAllowed, pipaauth.ErrMethod, -1)
	})
}

// A provider that ignores response_mode: the response in the query string
// is refused with an error that names ResponseMode, and no code is spent.
func TestFormPostResponseInQueryRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, formPostSetup(nil))
	h.setBehavior(pipatest.Behavior{IgnoreResponseMode: true})
	b := h.app.newBrowser(t)
	cb := b.authorize(b.startLogin("/private"))
	before := h.provider.TokenRequests()
	r := b.get(cb)
	expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidCallback, before)
	if !strings.Contains(r.body, "ResponseMode") {
		t.Errorf("the page does not name the ResponseMode setting:\n%s", r.body)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "Config.ResponseMode is form_post") {
		t.Errorf("the log does not name Config.ResponseMode:\n%s", logs)
	}
}

// An error response posted back is shown as the query form's is.
func TestFormPostProviderError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, formPostSetup(nil))
	b := h.app.newBrowser(t)
	auth := b.startLogin("/private")
	h.setBehavior(pipatest.Behavior{AuthorizeError: "access_denied"})
	action, form := b.formPostResponse(auth)
	h.setBehavior(pipatest.Behavior{})
	if form.Get("error") != "access_denied" || form.Has("code") {
		t.Fatalf("PiPA posts %v", form)
	}
	r := b.postForm(action, form)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "access_denied") {
		t.Errorf("posted error: %d\n%s", r.status, r.body)
	}
	errs := h.app.takeErrors()
	var pe *pipaauth.ProviderError
	if len(errs) != 1 || !errors.As(errs[0], &pe) || pe.Code != "access_denied" {
		t.Errorf("ErrorHandler got %v, want a *ProviderError access_denied", errs)
	}
}

// Tabs: logins started one after another and at once, finished in any
// order.
func TestFormPostConcurrentTabs(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var store *memStore
			if mode.store != nil {
				store = mode.store()
			}
			h := newHarness(t, formPostSetup(store))
			b := h.app.newBrowser(t)
			paths := []string{"/private", "/staff", "/admin"}
			type posted struct {
				action string
				form   url.Values
			}
			var forms []posted
			for _, p := range paths {
				a, f := b.formPostResponse(b.startLogin(p))
				forms = append(forms, posted{a, f})
			}
			var wg sync.WaitGroup
			for i := len(forms) - 1; i >= 0; i-- {
				wg.Go(func() {
					r := b.postForm(forms[i].action, forms[i].form)
					if r.status != http.StatusSeeOther || r.location() != paths[i] {
						t.Errorf("tab %s: %d to %q; errors %v", paths[i], r.status, r.location(), h.app.takeErrors())
					}
				})
			}
			wg.Wait()
			b.mustUser()
		})
	}
}

func TestFormPostDiscovery(t *testing.T) {
	t.Parallel()
	t.Run("not listed", func(t *testing.T) {
		provider := pipatest.NewServer()
		t.Cleanup(provider.Close)
		provider.SetBehavior(pipatest.Behavior{DiscoveryHook: func(doc map[string]any) {
			doc["response_modes_supported"] = []string{"query", "fragment"}
		}})
		_, err := pipaauth.New(t.Context(), pipaauth.Config{
			Issuer: provider.URL, ClientID: clientID, ClientSecret: clientSecret, RedirectURL: "http://127.0.0.1/callback",
			SessionKeys: newKeys(), InsecureAllowHTTP: true, ResponseMode: "form_post",
		})
		if !errors.Is(err, pipaauth.ErrConfig) || !strings.Contains(err.Error(), "ResponseMode") {
			t.Errorf("New = %v, want ErrConfig naming ResponseMode", err)
		}
	})
	t.Run("omitted: form_post is tried", func(t *testing.T) {
		h := newHarness(t, setup{
			discovery: func(doc map[string]any) { delete(doc, "response_modes_supported") },
			configure: func(cfg *pipaauth.Config) { cfg.ResponseMode = "form_post" },
		})
		b := h.app.newBrowser(t)
		action, form := b.formPostResponse(b.startLogin("/private"))
		if r := b.postForm(action, form); r.status != http.StatusSeeOther {
			t.Errorf("login: %d; errors %v", r.status, h.app.takeErrors())
		}
	})
	t.Run("unknown mode", func(t *testing.T) {
		_, err := pipaauth.New(t.Context(), pipaauth.Config{
			Issuer: "https://pipa.example", ClientID: clientID, ClientSecret: clientSecret, RedirectURL: "https://app.example/callback",
			SessionKeys: newKeys(), ResponseMode: "fragment", LazyDiscovery: true,
		})
		if !errors.Is(err, pipaauth.ErrConfig) || !strings.Contains(err.Error(), "ResponseMode") {
			t.Errorf("New = %v, want ErrConfig naming ResponseMode", err)
		}
	})
}
