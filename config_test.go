package pipaauth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// validConfig is a Config that New accepts against provider.
func validConfig(provider *pipatest.Server) pipaauth.Config {
	return pipaauth.Config{
		Issuer:       provider.URL,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		RedirectURL:  "https://app.example/callback",
		SessionKeys:  newKeys(),
		HTTPClient:   provider.Client(),
	}
}

func newAuth(t *testing.T, cfg pipaauth.Config) (*pipaauth.Auth, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return pipaauth.New(ctx, cfg)
}

func TestNewRejectsConfig(t *testing.T) {
	t.Parallel()
	provider := pipatest.NewTLSServer()
	t.Cleanup(provider.Close)
	if _, err := newAuth(t, validConfig(provider)); err != nil {
		t.Fatalf("New(valid config): %v", err)
	}
	key := func(n int) []byte { return []byte(strings.Repeat("k", n)) }
	hash, block := newKeys()[0], newKeys()[1]
	tests := []struct {
		name  string
		edit  func(c *pipaauth.Config)
		field string // named in the error message
	}{
		{"no Issuer", func(c *pipaauth.Config) { c.Issuer = "" }, "Issuer"},
		{"no ClientID", func(c *pipaauth.Config) { c.ClientID = "" }, "ClientID"},
		{"no ClientSecret", func(c *pipaauth.Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"Issuer over http", func(c *pipaauth.Config) { c.Issuer = strings.Replace(c.Issuer, "https:", "http:", 1) }, "Issuer"},
		{"Issuer relative", func(c *pipaauth.Config) { c.Issuer = "pipa.example" }, "Issuer"},
		{"no RedirectURL", func(c *pipaauth.Config) { c.RedirectURL = "" }, "RedirectURL"},
		{"RedirectURL relative", func(c *pipaauth.Config) { c.RedirectURL = "/callback" }, "RedirectURL"},
		{"RedirectURL without scheme", func(c *pipaauth.Config) { c.RedirectURL = "//app.example/callback" }, "RedirectURL"},
		{"RedirectURL over http", func(c *pipaauth.Config) { c.RedirectURL = "http://app.example/callback" }, "RedirectURL"},
		{"RedirectURL with a fragment", func(c *pipaauth.Config) { c.RedirectURL = "https://app.example/callback#x" }, "RedirectURL"},
		{"RedirectURL with user info", func(c *pipaauth.Config) { c.RedirectURL = "https://u:p@app.example/callback" }, "RedirectURL"},
		{"RedirectURL of another scheme", func(c *pipaauth.Config) { c.RedirectURL = "ftp://app.example/callback" }, "RedirectURL"},
		{"PostLogoutRedirectURL over http", func(c *pipaauth.Config) { c.PostLogoutRedirectURL = "http://app.example/" }, "PostLogoutRedirectURL"},
		{"no SessionKeys", func(c *pipaauth.Config) { c.SessionKeys = nil }, "SessionKeys"},
		{"odd number of keys", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash, block, hash} }, "SessionKeys"},
		{"one key", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash} }, "SessionKeys"},
		{"hash key of 31 bytes", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash[:31], block} }, "SessionKeys[0]"},
		{"empty hash key", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{nil, block} }, "SessionKeys[0]"},
		{"block key of 15 bytes", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash, block[:15]} }, "SessionKeys[1]"},
		{"block key of 20 bytes", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash, block[:20]} }, "SessionKeys[1]"},
		{"block key of 33 bytes", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash, key(33)} }, "SessionKeys[1]"},
		{"empty block key", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash, nil} }, "SessionKeys[1]"},
		{"bad second pair", func(c *pipaauth.Config) { c.SessionKeys = [][]byte{hash, block, hash[:16], block} }, "SessionKeys[2]"},
		{"LoginPath relative", func(c *pipaauth.Config) { c.LoginPath = "login" }, "LoginPath"},
		{"LoginPath protocol-relative", func(c *pipaauth.Config) { c.LoginPath = "//evil.example/login" }, "LoginPath"},
		{"LogoutPath relative", func(c *pipaauth.Config) { c.LogoutPath = "logout" }, "LogoutPath"},
		{"LogoutPath protocol-relative", func(c *pipaauth.Config) { c.LogoutPath = "//evil.example/logout" }, "LogoutPath"},
		{"LogoutPath with a query", func(c *pipaauth.Config) { c.LogoutPath = "/logout?x=1" }, "LogoutPath"},
		{"LogoutPath with a semicolon", func(c *pipaauth.Config) { c.LogoutPath = "/logout;Domain=evil.example" }, "LogoutPath"},
		{"CookieName with a semicolon", func(c *pipaauth.Config) { c.CookieName = "a;b" }, "CookieName"},
		{"scope with a space", func(c *pipaauth.Config) { c.Scopes = []string{"openid email"} }, "Scopes"},
		{"empty, non-nil Scopes", func(c *pipaauth.Config) { c.Scopes = []string{} }, "Scopes"},
		{"negative SessionLifetime", func(c *pipaauth.Config) { c.SessionLifetime = -time.Hour }, "SessionLifetime"},
		{"negative ExchangeTimeout", func(c *pipaauth.Config) { c.ExchangeTimeout = -time.Second }, "ExchangeTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(provider)
			tt.edit(&cfg)
			a, err := newAuth(t, cfg)
			if err == nil {
				t.Fatalf("New accepted the config (Auth %p), want an error naming %s", a, tt.field)
			}
			if !errors.Is(err, pipaauth.ErrConfig) {
				t.Errorf("New error %q does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New error %q does not name %s", err, tt.field)
			}
			if strings.Contains(err.Error(), clientSecret) {
				t.Errorf("New error %q holds the client secret", err)
			}
		})
	}
}

// A negative duration or count is refused with an error that names that
// field and no other.
func TestNewNamesTheNegativeField(t *testing.T) {
	t.Parallel()
	provider := pipatest.NewTLSServer()
	t.Cleanup(provider.Close)
	fields := []struct {
		name string
		edit func(c *pipaauth.Config)
	}{
		{"SessionLifetime", func(c *pipaauth.Config) { c.SessionLifetime = -time.Hour }},
		{"IdleTimeout", func(c *pipaauth.Config) { c.IdleTimeout = -time.Minute }},
		{"ExchangeTimeout", func(c *pipaauth.Config) { c.ExchangeTimeout = -time.Second }},
		{"SessionStoreTimeout", func(c *pipaauth.Config) { c.SessionStoreTimeout = -time.Second }},
		{"SessionStoreMaxWaiting", func(c *pipaauth.Config) { c.SessionStoreMaxWaiting = -1 }},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			cfg := validConfig(provider)
			f.edit(&cfg)
			_, err := newAuth(t, cfg)
			if !errors.Is(err, pipaauth.ErrConfig) {
				t.Fatalf("New with a negative %s: %v, want ErrConfig", f.name, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, f.name+" is -") {
				t.Errorf("New error %q does not name %s with its value", msg, f.name)
			}
			for _, other := range fields {
				if other.name != f.name && strings.Contains(msg, other.name) {
					t.Errorf("New error %q names %s too, want only %s", msg, other.name, f.name)
				}
			}
		})
	}
}

func TestNewRefusesPlainHTTPWithoutTheSwitch(t *testing.T) {
	t.Parallel()
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	cfg := validConfig(provider)
	cfg.RedirectURL = "http://127.0.0.1/callback"
	_, err := newAuth(t, cfg)
	if !errors.Is(err, pipaauth.ErrConfig) || !strings.Contains(err.Error(), "Issuer") {
		t.Errorf("New with an http issuer: %v, want ErrConfig naming Issuer", err)
	}
	cfg.InsecureAllowHTTP = true
	if _, err := newAuth(t, cfg); err != nil {
		t.Errorf("New with InsecureAllowHTTP: %v", err)
	}
}

// discoveryServer serves body (with status 200) as the discovery document.
func discoveryServer(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewTLSServer(handler)
	t.Cleanup(s.Close)
	return s
}

func TestNewDiscoveryFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hook func(doc map[string]any) // edit of a pipatest document
	}{
		{"issuer mismatch", func(doc map[string]any) { doc["issuer"] = "https://other.example" }},
		{"issuer with a trailing slash", func(doc map[string]any) { doc["issuer"] = doc["issuer"].(string) + "/" }},
		{"over 1 MiB", func(doc map[string]any) { doc["padding"] = strings.Repeat("x", 1<<20) }},
		{"no token_endpoint", func(doc map[string]any) { delete(doc, "token_endpoint") }},
		{"no authorization_endpoint", func(doc map[string]any) { delete(doc, "authorization_endpoint") }},
		{"no jwks_uri", func(doc map[string]any) { delete(doc, "jwks_uri") }},
		{"token_endpoint over http", func(doc map[string]any) {
			doc["token_endpoint"] = strings.Replace(doc["token_endpoint"].(string), "https:", "http:", 1)
		}},
		{"only private_key_jwt", func(doc map[string]any) {
			doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
		}},
		{"no response_type code", func(doc map[string]any) { doc["response_types_supported"] = []string{"id_token"} }},
		{"end_session_endpoint over http", func(doc map[string]any) {
			doc["end_session_endpoint"] = strings.Replace(doc["end_session_endpoint"].(string), "https:", "http:", 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			provider := pipatest.NewUnstartedServer()
			provider.SetBehavior(pipatest.Behavior{DiscoveryHook: tt.hook})
			provider.StartTLS()
			t.Cleanup(provider.Close)
			_, err := newAuth(t, validConfig(provider))
			if !errors.Is(err, pipaauth.ErrDiscovery) {
				t.Errorf("New: %v, want an error wrapping ErrDiscovery", err)
			}
		})
	}

	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg := pipaauth.Config{
			Issuer: "https://" + addr, ClientID: clientID, ClientSecret: clientSecret,
			RedirectURL: "https://app.example/callback", SessionKeys: newKeys(),
		}
		if _, err := newAuth(t, cfg); !errors.Is(err, pipaauth.ErrDiscovery) {
			t.Errorf("New: %v, want an error wrapping ErrDiscovery", err)
		}
	})

	for name, handler := range map[string]http.HandlerFunc{
		"invalid JSON": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"issuer": "https://`))
		},
		"not found": http.NotFound,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := discoveryServer(t, handler)
			cfg := pipaauth.Config{
				Issuer: s.URL, ClientID: clientID, ClientSecret: clientSecret,
				RedirectURL: "https://app.example/callback", SessionKeys: newKeys(), HTTPClient: s.Client(),
			}
			if _, err := newAuth(t, cfg); !errors.Is(err, pipaauth.ErrDiscovery) {
				t.Errorf("New: %v, want an error wrapping ErrDiscovery", err)
			}
		})
	}
}

// A discovery document behind a redirect is refused, even one that would be
// fine: the client never follows redirects (a redirected token request
// would carry the client secret elsewhere).
func TestNewDoesNotFollowDiscoveryRedirects(t *testing.T) {
	t.Parallel()
	var front *httptest.Server
	provider := pipatest.NewUnstartedServer()
	provider.SetBehavior(pipatest.Behavior{DiscoveryHook: func(doc map[string]any) { doc["issuer"] = front.URL }})
	provider.StartTLS()
	t.Cleanup(provider.Close)
	front = discoveryServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, provider.URL+r.URL.Path, http.StatusFound)
	})
	cfg := validConfig(provider)
	cfg.Issuer = front.URL
	if _, err := newAuth(t, cfg); !errors.Is(err, pipaauth.ErrDiscovery) {
		t.Errorf("New: %v, want an error wrapping ErrDiscovery", err)
	}
}

func TestNewReturnsOnAServerThatNeverAnswers(t *testing.T) {
	t.Parallel()
	s := discoveryServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	cfg := pipaauth.Config{
		Issuer: s.URL, ClientID: clientID, ClientSecret: clientSecret,
		RedirectURL: "https://app.example/callback", SessionKeys: newKeys(),
		HTTPClient: &http.Client{Transport: s.Client().Transport}, // no timeout of its own
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := pipaauth.New(ctx, cfg)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, pipaauth.ErrDiscovery) {
			t.Errorf("New: %v, want an error wrapping ErrDiscovery", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("New did not return although its context expired")
	}
}

func TestAllowHelpers(t *testing.T) {
	t.Parallel()
	user := func(email string, verified bool) pipaauth.User {
		return pipaauth.User{ID: "u-" + email, Email: email, EmailVerified: verified}
	}
	emails := pipaauth.AllowEmails("alice@example.com", " Bob@Example.ORG ")
	domains := pipaauth.AllowEmailDomains("example.com", "@Example.org")
	ids := pipaauth.AllowUserIDs("u1", "u2")
	tests := []struct {
		name  string
		allow func(pipaauth.User) bool
		u     pipaauth.User
		want  bool
	}{
		{"email listed", emails, user("alice@example.com", true), true},
		{"email other case", emails, user("ALICE@example.COM", true), true},
		{"email listed with spaces and capitals", emails, user("bob@example.org", true), true},
		{"email unverified", emails, user("alice@example.com", false), false},
		{"email not listed", emails, user("carol@example.com", true), false},
		{"email with two @", emails, user("alice@example.com@example.com", true), false},
		{"email empty", emails, user("", true), false},
		{"email prefix", emails, user("alice@example.co", true), false},
		{"email suffix", emails, user("xalice@example.com", true), false},

		{"domain listed", domains, user("a@example.com", true), true},
		{"domain other case", domains, user("a@EXAMPLE.com", true), true},
		{"domain listed with @", domains, user("a@example.org", true), true},
		{"domain unverified", domains, user("a@example.com", false), false},
		{"domain a@b@", domains, user("a@b@example.com", true), false},
		{"domain subdomain", domains, user("a@sub.example.com", true), false},
		{"domain look-alike", domains, user("a@notexample.com", true), false},
		{"domain trailing dot", domains, user("a@example.com.", true), false},
		{"domain with a longer TLD", domains, user("a@example.com.evil", true), false},
		{"domain empty local part", domains, user("@example.com", true), false},
		{"domain no @", domains, user("example.com", true), false},
		{"domain empty", domains, user("", true), false},
		{"email with a Kelvin sign for k", pipaauth.AllowEmails("kim@example.com"), user("\u212aim@example.com", true), false},
		{"domain with a Kelvin sign for k", pipaauth.AllowEmailDomains("kelvin.example"), user("a@\u212aelvin.example", true), false},
		{"empty domain listed, address ending in @", pipaauth.AllowEmailDomains("", "example.com"), user("a@", true), false},

		{"id listed", ids, pipaauth.User{ID: "u1"}, true},
		{"id listed second", ids, pipaauth.User{ID: "u2"}, true},
		{"id not listed", ids, pipaauth.User{ID: "u3"}, false},
		{"id prefix", ids, pipaauth.User{ID: "u"}, false},
		{"id empty", ids, pipaauth.User{}, false},
		{"empty id listed, user without id", pipaauth.AllowUserIDs(""), pipaauth.User{}, false},
		{"nothing listed", pipaauth.AllowEmails(), user("", false), false},
		{"empty email listed, user without email", pipaauth.AllowEmails(""), user("", true), false},
		{"empty domain listed, user without email", pipaauth.AllowEmailDomains(""), user("", true), false},
	}
	for _, tt := range tests {
		if got := tt.allow(tt.u); got != tt.want {
			t.Errorf("%s: allow(%+v) = %v, want %v", tt.name, tt.u, got, tt.want)
		}
	}
}
