package pipaauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/memstore"
	"github.com/pipaauth/pipaauth/pipatest"
)

// uaTransport sets the User-Agent of every request.
type uaTransport struct{ ua string }

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return http.DefaultTransport.RoundTrip(r)
}

// sessionsApp is a testApp on a memstore with routes over the listing API.
type sessionsApp struct {
	*testApp
	store *memstore.Store
}

func newSessionsApp(t *testing.T, provider *pipatest.Server, store bool) *sessionsApp {
	t.Helper()
	sa := &sessionsApp{}
	if store {
		sa.store = memstore.New(memstore.Options{})
	}
	sa.testApp = newTestApp(t, provider, func(c *pipaauth.Config) {
		if sa.store != nil {
			c.SessionStore = sa.store
		}
	})
	a := sa.auth
	sa.mux.Handle("/callback", a.CallbackHandler())
	sa.mux.Handle("/private", a.RequireLogin(http.HandlerFunc(echoUser)))
	sa.mux.HandleFunc("/sessions", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.Sessions(r)
		if err != nil {
			http.Error(w, err.Error(), statusOfListing(err))
			return
		}
		json.NewEncoder(w).Encode(list)
	})
	sa.mux.HandleFunc("POST /end", func(w http.ResponseWriter, r *http.Request) {
		if err := a.EndSession(w, r, r.FormValue("id")); err != nil {
			http.Error(w, err.Error(), statusOfListing(err))
			return
		}
		io.WriteString(w, "ended")
	})
	sa.mux.HandleFunc("POST /end-others", func(w http.ResponseWriter, r *http.Request) {
		n, err := a.EndOtherSessions(r)
		if err != nil {
			http.Error(w, err.Error(), statusOfListing(err))
			return
		}
		json.NewEncoder(w).Encode(n)
	})
	return sa
}

func statusOfListing(err error) int {
	switch {
	case errors.Is(err, pipaauth.ErrLoginRequired):
		return http.StatusUnauthorized
	case errors.Is(err, pipaauth.ErrSessionNotFound):
		return http.StatusNotFound
	case errors.Is(err, errors.ErrUnsupported):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// device is one browser: a cookie jar and a User-Agent.
type device struct {
	t      *testing.T
	app    *sessionsApp
	client *http.Client
}

func (sa *sessionsApp) login(t *testing.T, provider *pipatest.Server, user, ua string) *device {
	t.Helper()
	provider.SetUser(pipatest.User{Name: user, Email: user + "@example.com"})
	jar, _ := cookiejar.New(nil)
	d := &device{t: t, app: sa, client: &http.Client{Jar: jar, Transport: uaTransport{ua}}}
	resp, err := d.client.Get(sa.srv.URL + "/private") // a navigation: redirected to log in
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), provider.Subject(pipatest.DefaultClientID, user)) {
		t.Fatalf("login of %s: %d %q", user, resp.StatusCode, body)
	}
	return d
}

func (d *device) do(method, path string, form url.Values) (int, string) {
	d.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, d.app.srv.URL+path, body)
	req.Header.Set("Accept", "application/json")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *device) sessions() []pipaauth.SessionInfo {
	d.t.Helper()
	code, body := d.do("GET", "/sessions", nil)
	if code != 200 {
		d.t.Fatalf("/sessions: %d %q", code, body)
	}
	var list []pipaauth.SessionInfo
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		d.t.Fatal(err)
	}
	return list
}

func (d *device) cookie() string {
	u, _ := url.Parse(d.app.srv.URL)
	for _, c := range d.client.Jar.Cookies(u) {
		if c.Name == plainCookieName {
			return c.Value
		}
	}
	return ""
}

func TestSessionsListAndEnd(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	app := newSessionsApp(t, provider, true)
	laptop := app.login(t, provider, "alice", "Laptop/1.0")
	time.Sleep(5 * time.Millisecond) // distinct login times
	phone := app.login(t, provider, "alice", "Phone/2.0 "+strings.Repeat("é", 200))
	bob := app.login(t, provider, "bob", "Bob/1.0")

	list := laptop.sessions()
	if len(list) != 2 {
		t.Fatalf("alice's sessions: %+v, want 2", list)
	}
	if !strings.HasPrefix(list[0].UserAgent, "Phone/2.0 ") || list[1].UserAgent != "Laptop/1.0" {
		t.Errorf("order or User-Agents: %q, %q: want the phone (most recent login) first", list[0].UserAgent, list[1].UserAgent)
	}
	if len(list[0].UserAgent) > 256 || !strings.HasSuffix(list[0].UserAgent, "é") {
		t.Errorf("a long User-Agent kept as %d bytes ending %q: want at most 256, cut between characters", len(list[0].UserAgent), list[0].UserAgent[len(list[0].UserAgent)-2:])
	}
	if list[0].Current || !list[1].Current {
		t.Errorf("Current: %v %v, want the laptop's only", list[0].Current, list[1].Current)
	}
	for _, s := range list {
		if s.LoginAt.IsZero() || s.LastSeen.Before(s.LoginAt) || time.Since(s.LoginAt) > time.Minute {
			t.Errorf("times: login %v, last seen %v", s.LoginAt, s.LastSeen)
		}
	}
	// The handle is neither the cookie nor the store id.
	stored, _ := app.store.ListSessions(t.Context(), provider.Subject(pipatest.DefaultClientID, "alice"))
	for _, s := range list {
		if s.ID == "" || s.ID == laptop.cookie() || s.ID == phone.cookie() {
			t.Errorf("handle %q is empty or a cookie", s.ID)
		}
		for _, st := range stored {
			if strings.Contains(s.ID, st.ID) || strings.Contains(laptop.cookie(), s.ID) {
				t.Errorf("handle %q reveals the store id %q", s.ID, st.ID)
			}
		}
	}
	// Bob cannot end alice's session, and an unknown id is not found.
	for _, id := range []string{list[0].ID, "", "nope", strings.Repeat("x", 100)} {
		if code, body := bob.do("POST", "/end", url.Values{"id": {id}}); code != http.StatusNotFound {
			t.Errorf("bob ending %q: %d %q, want 404 (ErrSessionNotFound)", id, code, body)
		}
	}
	if code, _ := phone.do("GET", "/private", nil); code != 200 {
		t.Fatalf("the phone after bob's attempts: %d", code)
	}
	// The laptop ends the phone's session: refused at once, laptop kept.
	if code, body := laptop.do("POST", "/end", url.Values{"id": {list[0].ID}}); code != 200 {
		t.Fatalf("ending the phone: %d %q", code, body)
	}
	if code, _ := phone.do("GET", "/private", nil); code != http.StatusUnauthorized {
		t.Errorf("the phone after it was ended: %d, want 401", code)
	}
	if code, body := laptop.do("POST", "/end", url.Values{"id": {list[0].ID}}); code != http.StatusNotFound {
		t.Errorf("ending it again: %d %q, want 404", code, body)
	}
	if code, _ := laptop.do("GET", "/private", nil); code != 200 {
		t.Errorf("the laptop: %d, want 200", code)
	}
	if got := laptop.sessions(); len(got) != 1 || !got[0].Current {
		t.Errorf("after ending the phone: %+v", got)
	}
	// Ending the current session clears its cookie.
	if code, _ := laptop.do("POST", "/end", url.Values{"id": {list[1].ID}}); code != 200 {
		t.Fatalf("ending the current session: %d", code)
	}
	if c := laptop.cookie(); c != "" {
		t.Errorf("the cookie of the ended current session is still set")
	}
	if code, _ := laptop.do("GET", "/sessions", nil); code != http.StatusUnauthorized {
		t.Errorf("listing without a session: %d, want 401 (ErrLoginRequired)", code)
	}
	if code, _ := bob.do("GET", "/private", nil); code != 200 {
		t.Errorf("bob: %d, want 200", code)
	}
}

func TestEndOtherAndUserSessions(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	app := newSessionsApp(t, provider, true)
	var alice []*device
	for _, ua := range []string{"A", "B", "C"} {
		alice = append(alice, app.login(t, provider, "alice", ua))
	}
	bob := app.login(t, provider, "bob", "Bob")
	code, body := alice[1].do("POST", "/end-others", url.Values{})
	if code != 200 || strings.TrimSpace(body) != "2" {
		t.Fatalf("end-others: %d %q, want 2", code, body)
	}
	for i, d := range alice {
		want := http.StatusUnauthorized
		if i == 1 {
			want = 200
		}
		if code, _ := d.do("GET", "/private", nil); code != want {
			t.Errorf("alice's device %d: %d, want %d", i, code, want)
		}
	}
	ctx := t.Context()
	aliceID, bobID := provider.Subject(pipatest.DefaultClientID, "alice"), provider.Subject(pipatest.DefaultClientID, "bob")
	list, err := app.auth.UserSessions(ctx, aliceID)
	if err != nil || len(list) != 1 || list[0].Current || list[0].UserAgent != "B" {
		t.Errorf("UserSessions: %+v %v", list, err)
	}
	if n, err := app.auth.EndUserSessions(ctx, aliceID); err != nil || n != 1 {
		t.Errorf("EndUserSessions: %d %v, want 1", n, err)
	}
	if code, _ := alice[1].do("GET", "/private", nil); code != http.StatusUnauthorized {
		t.Errorf("alice after EndUserSessions: %d, want 401", code)
	}
	if list, err := app.auth.UserSessions(ctx, aliceID); err != nil || len(list) != 0 {
		t.Errorf("UserSessions after EndUserSessions: %+v %v", list, err)
	}
	if code, _ := bob.do("GET", "/private", nil); code != 200 {
		t.Errorf("bob: %d, want 200", code)
	}
	if list, err := app.auth.UserSessions(ctx, bobID); err != nil || len(list) != 1 {
		t.Errorf("bob's sessions: %+v %v", list, err)
	}
	for name, f := range map[string]func() error{
		"UserSessions":    func() error { _, err := app.auth.UserSessions(ctx, ""); return err },
		"EndUserSessions": func() error { _, err := app.auth.EndUserSessions(ctx, ""); return err },
	} {
		if err := f(); !errors.Is(err, pipaauth.ErrConfig) {
			t.Errorf("%s of an empty user id: %v, want ErrConfig", name, err)
		}
	}
}

// Without a store that lists (cookie sessions), every method says so; with
// one but no login, the request methods want a login.
func TestSessionsUnsupportedAndLoginRequired(t *testing.T) {
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	cookies := newSessionsApp(t, provider, false)
	listing := newSessionsApp(t, provider, true)
	logged := cookies.login(t, provider, "alice", "A")
	r, _ := http.NewRequest("GET", cookies.srv.URL, nil)
	r.AddCookie(&http.Cookie{Name: plainCookieName, Value: logged.cookie()})
	if _, ok := cookies.auth.User(r); !ok {
		t.Fatal("the cookie session is not logged in")
	}
	noLogin, _ := http.NewRequest("GET", listing.srv.URL, nil)
	w := httptest.NewRecorder()
	for _, tc := range []struct {
		name string
		app  *sessionsApp
		r    *http.Request
		want error
	}{
		{"cookie sessions", cookies, r, errors.ErrUnsupported},
		{"no login", listing, noLogin, pipaauth.ErrLoginRequired},
	} {
		a := tc.app.auth
		calls := map[string]func() error{
			"Sessions":         func() error { _, err := a.Sessions(tc.r); return err },
			"EndSession":       func() error { return a.EndSession(w, tc.r, "x") },
			"EndOtherSessions": func() error { _, err := a.EndOtherSessions(tc.r); return err },
		}
		if tc.want == errors.ErrUnsupported {
			calls["UserSessions"] = func() error { _, err := a.UserSessions(context.Background(), "u"); return err }
			calls["EndUserSessions"] = func() error { _, err := a.EndUserSessions(context.Background(), "u"); return err }
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, tc.want) {
				t.Errorf("%s, %s: %v, want %v", tc.name, name, err, tc.want)
			}
			if tc.want == errors.ErrUnsupported && (err == nil || !strings.Contains(err.Error(), "SessionLister")) {
				t.Errorf("%s, %s: %v: the text should say what to use", tc.name, name, err)
			}
		}
	}
}
