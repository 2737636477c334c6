package redisstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
	"github.com/pipaauth/pipaauth/redisstore"
	"github.com/pipaauth/pipaauth/redisstore/internal/redistest"
)

// clusterClient returns a rueidis client of the cluster c, as docs/redis.md
// recommends, closed when t ends.
func clusterClient(t *testing.T, c *redistest.Cluster) rueidis.Client {
	t.Helper()
	cl, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      c.Addrs(),
		ConnWriteTimeout: time.Second,
		RetryDelay:       redisstore.QuickRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cl.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("rueidis made a %v client of the cluster", cl.Mode())
	}
	t.Cleanup(cl.Close)
	return cl
}

// With any KeyPrefix, 240 users' sessions and indexes spread over the three
// masters (each holds 15-50% of the keys), every operation stays
// single-slot, and a second instance sees the first one's writes and
// revocations.
func TestClusterSpreadsUsers(t *testing.T) {
	c := redistest.RequireCluster(t, 3, 1)
	ca, cb := clusterClient(t, c), clusterClient(t, c)
	for _, prefix := range []string{"", "myapp:", "{myapp}:", "app:{tenant}:", "{}odd:", "half{open:"} {
		t.Run(fmt.Sprintf("prefix %q", prefix), func(t *testing.T) {
			for _, m := range c.Masters() {
				if out, err := c.CLI(m, "flushall"); err != nil {
					t.Fatalf("flushall: %v %s", err, out)
				}
			}
			a := newStore(t, ca, redisstore.Options{KeyPrefix: prefix})
			b := newStore(t, cb, redisstore.Options{KeyPrefix: prefix})
			ctx := ctxT(t, time.Minute)
			expires := time.Now().Add(time.Hour)
			ids := make([]string, 240)
			for i := range ids {
				sub := fmt.Sprintf("user-%d", i)
				id, err := a.NewSessionID(sub)
				if err != nil {
					t.Fatal(err)
				}
				ok, err := a.CreateListedSession(ctx, id, []byte("data"), sub, fmt.Sprintf("sid-%d", i), expires, time.Now(), "Test/1.0")
				if err != nil || !ok {
					t.Fatalf("create %d: %v %v", i, ok, err)
				}
				ids[i] = id
			}
			total := 0
			var counts []int
			for _, m := range c.Masters() {
				n, err := c.DBSize(m)
				if err != nil {
					t.Fatal(err)
				}
				counts = append(counts, n)
				total += n
			}
			if len(counts) != 3 {
				t.Fatalf("%d masters, want 3", len(counts))
			}
			t.Logf("240 users' %d keys per master: %v", total, counts)
			for i, n := range counts {
				if share := float64(n) / float64(total); share < 0.15 || share > 0.5 {
					t.Errorf("master %d holds %.0f%% of the keys, want 15-50%%", i, share*100)
				}
			}
			// An id that does not name its user's tag cannot find a slot:
			// refused where users spread (a prefix without braces).
			_, err := a.CreateSession(ctx, "plain-id-without-tag", []byte("d"), "user-x", "", expires)
			if spread := prefix != "{myapp}:" && prefix != "app:{tenant}:"; spread != (err != nil) {
				t.Errorf("CreateSession of an id without a tag: %v, want an error only where users spread", err)
			}
			// The other instance reads every session.
			for i, id := range ids[:20] {
				if _, v, err := b.LoadSession(ctx, id); err != nil || v != 1 {
					t.Fatalf("instance b, session %d: version %d, %v", i, v, err)
				}
			}
			// Revocations by sub and by sid, from either instance.
			if n, err := b.RevokeSubject(ctx, "user-1"); err != nil || n != 1 {
				t.Errorf("RevokeSubject: %d %v, want 1", n, err)
			}
			if n, err := b.RevokeSID(ctx, "sid-2"); err != nil || n != 1 {
				t.Errorf("RevokeSID: %d %v, want 1", n, err)
			}
			for _, id := range ids[1:3] {
				if _, v, err := a.LoadSession(ctx, id); err != nil || v != 0 {
					t.Errorf("revoked session: version %d, %v, want gone", v, err)
				}
			}
			// Write-back, listing and delete.
			if ok, err := b.ReplaceSession(ctx, ids[3], 1, []byte("data2"), "user-3", "sid-3", expires); err != nil || !ok {
				t.Errorf("ReplaceSession: %v %v", ok, err)
			}
			list, err := a.ListSessions(ctx, "user-3")
			if err != nil || len(list) != 1 || list[0].ID != ids[3] || list[0].UserAgent != "Test/1.0" {
				t.Errorf("ListSessions: %+v %v", list, err)
			}
			if err := a.DeleteSession(ctx, ids[3]); err != nil {
				t.Fatal(err)
			}
			if list, err := b.ListSessions(ctx, "user-3"); err != nil || len(list) != 0 {
				t.Errorf("ListSessions after the delete: %+v %v", list, err)
			}
		})
	}
}

// clusterInstance is an application instance with its own cluster client.
func clusterInstance(t *testing.T, provider *pipatest.Server, client rueidis.Client, keys [][]byte) *instance {
	t.Helper()
	store := newStore(t, client, redisstore.Options{})
	mux := http.NewServeMux()
	in := &instance{srv: httptest.NewServer(mux)}
	t.Cleanup(in.srv.Close)
	var err error
	in.auth, err = pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:       provider.URL,
		ClientID:     pipatest.DefaultClientID,
		ClientSecret: pipatest.DefaultClientSecret,
		RedirectURL:  in.srv.URL + "/callback",
		SessionKeys:  keys,
		SessionStore: store,
		// Short enough that a request of the failover gets its 503
		// quickly, long enough for a loaded test machine.
		SessionStoreTimeout: 2 * time.Second,
		InsecureAllowHTTP:   true,
		Logger:              slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/callback", in.auth.CallbackHandler())
	mux.Handle("/logout", in.auth.LogoutHandler())
	mux.Handle("POST /backchannel-logout", in.auth.BackChannelLogoutHandler())
	mux.Handle("/private", in.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		io.WriteString(w, "hello "+u.ID)
	})))
	return in
}

// getBody is get returning the body too.
func getBody(t *testing.T, url string, c *http.Cookie) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(c)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

type clusterLogin struct {
	sub    string
	cookie *http.Cookie
}

// Logins on a 3-master cluster served across instances; logout and
// revocation refused everywhere within 100 ms; a master killed with
// SIGKILL: meanwhile only the user's page or 503, every session served
// again within 10 s of the replica's takeover, a logout seen within 100 ms
// after.
func TestClusterFailover(t *testing.T) {
	c := redistest.RequireCluster(t, 3, 1)
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	keys := [][]byte{securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)}
	a := clusterInstance(t, provider, clusterClient(t, c), keys)
	b := clusterInstance(t, provider, clusterClient(t, c), keys)

	login := func(t *testing.T, user string) clusterLogin {
		t.Helper()
		provider.SetUser(pipatest.User{Name: user, Email: user + "@example.com"})
		jar, _ := cookiejar.New(nil)
		resp, err := (&http.Client{Jar: jar}).Get(a.srv.URL + "/private")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sub := provider.Subject(pipatest.DefaultClientID, user)
		if resp.StatusCode != 200 || string(body) != "hello "+sub {
			t.Fatalf("after the login: %d %q", resp.StatusCode, body)
		}
		for _, ck := range jar.Cookies(resp.Request.URL) {
			if sessionCookie(ck.Name) {
				return clusterLogin{sub, ck}
			}
		}
		t.Fatal("no session cookie")
		return clusterLogin{}
	}
	var logins []clusterLogin
	for i := range 24 {
		logins = append(logins, login(t, fmt.Sprintf("user%d", i)))
	}
	for _, l := range logins {
		if code, body := getBody(t, b.srv.URL+"/private", l.cookie); code != 200 || body != "hello "+l.sub {
			t.Fatalf("instance b: %d %q", code, body)
		}
	}
	refusedWithin := func(t *testing.T, what string, l clusterLogin, begin time.Time) {
		t.Helper()
		for _, in := range []*instance{a, b} {
			for get(t, in.srv.URL+"/private", l.cookie) != http.StatusUnauthorized {
				if time.Since(begin) > time.Second {
					t.Fatalf("%s: still served 1s later", what)
				}
			}
		}
		took := time.Since(begin)
		t.Logf("%s refused by both instances %s later", what, took.Round(100*time.Microsecond))
		if took > 100*time.Millisecond {
			t.Errorf("%s took %s to be refused everywhere, want within 100ms", what, took)
		}
	}
	// Logout on a.
	logout := func(t *testing.T, l clusterLogin) {
		t.Helper()
		req, _ := http.NewRequest("POST", a.srv.URL+"/logout", nil)
		req.AddCookie(l.cookie)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
	}
	logout(t, logins[0])
	refusedWithin(t, "logout", logins[0], time.Now())
	// Back-channel revocations through the Auth of instance a.
	begin := time.Now()
	if n, err := a.auth.EndUserSessions(t.Context(), logins[1].sub); err != nil || n != 1 {
		t.Fatalf("EndUserSessions: %d %v", n, err)
	}
	refusedWithin(t, "revocation by sub", logins[1], begin)
	// Back-channel logout by sid, then by sub, posted to instance b.
	backChannel := func(t *testing.T, opts pipatest.LogoutTokenOptions) {
		t.Helper()
		form := url.Values{"logout_token": {provider.LogoutToken(pipatest.DefaultClientID, opts)}}
		resp, err := http.PostForm(b.srv.URL+"/backchannel-logout", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("back-channel logout: %d", resp.StatusCode)
		}
	}
	provider.SetBehavior(pipatest.Behavior{ClaimsHook: func(c map[string]any) { c["sid"] = "cluster-sid-1" }})
	withSID := login(t, "sidUser")
	provider.SetBehavior(pipatest.Behavior{})
	begin = time.Now()
	backChannel(t, pipatest.LogoutTokenOptions{OmitSubject: true, SID: "cluster-sid-1"})
	refusedWithin(t, "back-channel logout by sid", withSID, begin)
	begin = time.Now()
	backChannel(t, pipatest.LogoutTokenOptions{User: "user2"})
	refusedWithin(t, "back-channel logout by sub", logins[2], begin)
	logins = logins[3:]

	// Kill the master of the first user's slot.
	masters := c.Masters()
	var victim *redistest.Server
	for _, m := range masters {
		if n, _ := c.DBSize(m); n > 0 {
			victim = m
			break
		}
	}
	if victim == nil {
		t.Fatal("no master holds a key")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := map[string]int{}
	served := 0
	for _, in := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, l := range logins {
					code, body := getBody(t, in.srv.URL+"/private", l.cookie)
					mu.Lock()
					switch {
					case code == 200 && body == "hello "+l.sub:
						served++
					case code == http.StatusServiceUnavailable:
					default:
						bad[fmt.Sprintf("%d %q", code, body)]++
					}
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	victim.Kill()
	if err := c.WaitOK(30*time.Second, 3); err != nil {
		t.Fatal(err)
	}
	takeover := time.Now()
	t.Logf("the replica took over %s after the SIGKILL", takeover.Sub(killed).Round(10*time.Millisecond))
	// Every session served again on both instances.
	for _, l := range logins {
		for _, in := range []*instance{a, b} {
			for {
				code, body := getBody(t, in.srv.URL+"/private", l.cookie)
				if code == 200 && body == "hello "+l.sub {
					break
				}
				if time.Since(takeover) > 10*time.Second {
					t.Fatalf("a session is not served 10s after the takeover: %d %q", code, body)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	t.Logf("every session served again %s after the takeover (%s after the kill)", time.Since(takeover).Round(10*time.Millisecond), time.Since(killed).Round(10*time.Millisecond))
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("answers other than the user's page or 503 during the failover: %v", bad)
	}
	if served == 0 {
		t.Error("nothing was served during the failover")
	}
	// A logout after the failover is seen within 100 ms.
	for _, l := range logins[:3] {
		logout(t, l)
		refusedWithin(t, "logout after the failover", l, time.Now())
	}
}
