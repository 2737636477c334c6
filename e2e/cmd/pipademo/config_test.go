package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipaauth/pipaauth/e2e/internal/e2etest"
)

var (
	hashKey  = bytes.Repeat([]byte{'h'}, 32)
	blockKey = bytes.Repeat([]byte{'b'}, 32)
	goodKeys = base64.StdEncoding.EncodeToString(hashKey) + "," + base64.StdEncoding.EncodeToString(blockKey)
)

func goodEnv() map[string]string {
	return map[string]string{
		envIssuer:       "https://pipa.example",
		envClientID:     "client-1",
		envClientSecret: "s3cret",
		envRedirectURL:  "https://app.example/callback",
		envSessionKeys:  goodKeys,
	}
}

func getenvFrom(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestPipaConfigFromEnv(t *testing.T) {
	with := func(k, v string) map[string]string {
		env := goodEnv()
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // substrings of the error; nil: no error
		check   func(*testing.T, *pipaConfig)
	}{
		{name: "nothing set: embedded PiPA", env: map[string]string{}, check: func(t *testing.T, c *pipaConfig) {
			if c != nil {
				t.Errorf("config %+v, want nil", c)
			}
		}},
		{name: "good", env: goodEnv(), check: func(t *testing.T, c *pipaConfig) {
			if c.Issuer != "https://pipa.example" || c.ClientID != "client-1" || c.ClientSecret != "s3cret" ||
				c.RedirectURL != "https://app.example/callback" || c.InsecureAllowHTTP || c.PostLogoutRedirectURL != "" {
				t.Errorf("config %+v", c)
			}
			if len(c.SessionKeys) != 2 || !bytes.Equal(c.SessionKeys[0], hashKey) || !bytes.Equal(c.SessionKeys[1], blockKey) {
				t.Errorf("keys %q", c.SessionKeys)
			}
		}},
		{name: "good, URL base64 without padding, two pairs, post-logout URL", env: func() map[string]string {
			env := goodEnv()
			k := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 33))
			b := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 16))
			env[envSessionKeys] = k + ", " + b + "," + goodKeys
			env[envPostLogout] = "https://app.example/"
			return env
		}(), check: func(t *testing.T, c *pipaConfig) {
			if len(c.SessionKeys) != 4 || len(c.SessionKeys[0]) != 33 || len(c.SessionKeys[1]) != 16 || !bytes.Equal(c.SessionKeys[3], blockKey) {
				t.Errorf("keys %q", c.SessionKeys)
			}
			if c.PostLogoutRedirectURL != "https://app.example/" {
				t.Errorf("PostLogoutRedirectURL %q", c.PostLogoutRedirectURL)
			}
		}},
		{name: "http redirect on localhost: dev mode", env: with(envRedirectURL, "http://localhost:8080/callback"), check: func(t *testing.T, c *pipaConfig) {
			if !c.InsecureAllowHTTP {
				t.Error("InsecureAllowHTTP false")
			}
		}},
		{name: "missing issuer", env: with(envIssuer, ""), wantErr: []string{"PIPA_ISSUER is not set", "none of them"}},
		{name: "missing client id", env: with(envClientID, ""), wantErr: []string{"PIPA_CLIENT_ID is not set"}},
		{name: "missing client secret", env: with(envClientSecret, ""), wantErr: []string{"PIPA_CLIENT_SECRET is not set"}},
		{name: "missing redirect URL", env: with(envRedirectURL, ""), wantErr: []string{"PIPA_REDIRECT_URL is not set"}},
		{name: "missing session keys", env: with(envSessionKeys, ""), wantErr: []string{"PIPA_SESSION_KEYS is not set"}},
		{name: "blank counts as missing", env: with(envClientID, "  "), wantErr: []string{"PIPA_CLIENT_ID is not set"}},
		{name: "only one set", env: map[string]string{envClientID: "x"}, wantErr: []string{
			"PIPA_ISSUER, PIPA_CLIENT_SECRET, PIPA_REDIRECT_URL, PIPA_SESSION_KEYS are not set, but PIPA_CLIENT_ID is"}},
		{name: "only the post-logout URL", env: map[string]string{envPostLogout: "https://app.example/"}, wantErr: []string{"PIPA_POST_LOGOUT_REDIRECT_URL is set but PIPA_ISSUER is not"}},
		{name: "http issuer", env: with(envIssuer, "http://pipa.example"), wantErr: []string{"PIPA_ISSUER", "not an https URL"}},
		{name: "issuer not a URL", env: with(envIssuer, "pipa.example"), wantErr: []string{"PIPA_ISSUER"}},
		{name: "redirect not absolute", env: with(envRedirectURL, "/callback"), wantErr: []string{"PIPA_REDIRECT_URL", "not an absolute URL"}},
		{name: "http redirect elsewhere", env: with(envRedirectURL, "http://app.example/callback"), wantErr: []string{"PIPA_REDIRECT_URL", "plain http"}},
		{name: "redirect elsewhere than /callback", env: with(envRedirectURL, "https://app.example/oauth"), wantErr: []string{"PIPA_REDIRECT_URL", "/callback"}},
		{name: "bad post-logout URL", env: with(envPostLogout, "http://app.example/"), wantErr: []string{"PIPA_POST_LOGOUT_REDIRECT_URL"}},
		{name: "keys not base64", env: with(envSessionKeys, "not*base64,"+base64.StdEncoding.EncodeToString(blockKey)), wantErr: []string{"PIPA_SESSION_KEYS", "key 1 is not base64"}},
		{name: "odd number of keys", env: with(envSessionKeys, base64.StdEncoding.EncodeToString(hashKey)), wantErr: []string{"PIPA_SESSION_KEYS", "not pairs"}},
		{name: "empty key", env: with(envSessionKeys, goodKeys+",,"), wantErr: []string{"PIPA_SESSION_KEYS", "key 3 is empty"}},
		{name: "short hash key", env: with(envSessionKeys, base64.StdEncoding.EncodeToString(hashKey[:31])+","+base64.StdEncoding.EncodeToString(blockKey)), wantErr: []string{"PIPA_SESSION_KEYS", "key 1 (a hash key) is 31 bytes"}},
		{name: "bad block key", env: with(envSessionKeys, base64.StdEncoding.EncodeToString(hashKey)+","+base64.StdEncoding.EncodeToString(blockKey[:20])), wantErr: []string{"PIPA_SESSION_KEYS", "key 2 (a block key) is 20 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pipaConfigFromEnv(getenvFrom(tt.env))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("no error, config %+v", c)
			}
			var ce *configError
			if !errors.As(err, &ce) {
				t.Errorf("error %T, want *configError", err)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if s := err.Error(); strings.Contains(s, "s3cret") || strings.Contains(s, base64.StdEncoding.EncodeToString(hashKey)) {
				t.Errorf("error %q shows a secret", s)
			}
		})
	}
}

func TestParseAdmins(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "alice@example.com", want: []string{"alice@example.com"}},
		{in: " a@x.org , b@y.org,", want: []string{"a@x.org", "b@y.org"}},
		{in: "", wantErr: true},
		{in: " , ", wantErr: true},
		{in: "alice", wantErr: true},
		{in: "a@b@c", wantErr: true},
		{in: "Alice <a@x.org>", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseAdmins(tt.in)
		if (err != nil) != tt.wantErr || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("parseAdmins(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"partial PiPA config", nil, map[string]string{envIssuer: "https://pipa.example"}, "PIPA_CLIENT_ID, PIPA_CLIENT_SECRET, PIPA_REDIRECT_URL, PIPA_SESSION_KEYS are not set, but PIPA_ISSUER is"},
		{"malformed keys", nil, func() map[string]string { e := goodEnv(); e[envSessionKeys] = "%%%,%%%"; return e }(), "pipademo: PIPA_SESSION_KEYS: key 1 is not base64"},
		{"bad -admins", []string{"-admins", "nobody"}, nil, `pipademo: -admins: "nobody" is not an email address`},
		{"bad PIPADEMO_ADMINS", nil, map[string]string{envAdmins: "x"}, `pipademo: PIPADEMO_ADMINS: "x" is not an email address`},
		{"unknown flag", []string{"-client-secret", "x"}, nil, "flag provided but not defined: -client-secret"},
		{"argument", []string{"secret"}, nil, `unexpected argument "secret"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr e2etest.LogBuffer
			code := run(t.Context(), append([]string{"-addr", "127.0.0.1:0"}, tt.args...), getenvFrom(tt.env), &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.want)
			}
			if stdout.String() != "" {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

func TestRunPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr e2etest.LogBuffer
	code := run(t.Context(), []string{"-addr", ln.Addr().String()}, getenvFrom(nil), &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := "pipademo: cannot serve on " + ln.Addr().String() + ": the port is already in use"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not contain %q", stderr.String(), want)
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	// Find a free port, then let run listen on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr e2etest.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", addr}, getenvFrom(map[string]string{envAdmins: "bob@example.org"}), &stdout, &stderr)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /: status %d", resp.StatusCode)
			}
			break
		}
		select {
		case code := <-done:
			t.Fatalf("run exited with %d before serving: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app never answered: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := stdout.String()
	for _, want := range []string{"App:            http://" + addr + "/", "Embedded PiPA:  http://127.0.0.1:", "alice    alice@example.com", "bob      bob@example.org", "Admins (may see /admin): the admins group (groups claim); by email: bob@example.org"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner does not contain %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"plain-HTTP dev mode", "sessions will not survive a restart"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log does not contain %q:\n%s", want, stderr.String())
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after shutdown, want 0: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after the context ended")
	}
}

func TestBrowserHostPort(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4321}
	for addr, want := range map[string]string{
		"127.0.0.1:0":    "127.0.0.1:4321",
		":8080":          "127.0.0.1:4321",
		"0.0.0.0:8080":   "127.0.0.1:4321",
		"[::]:8080":      "127.0.0.1:4321",
		"localhost:8080": "localhost:4321",
		"[::1]:8080":     "[::1]:4321",
	} {
		if got := browserHostPort(addr, bound); got != want {
			t.Errorf("browserHostPort(%q) = %q, want %q", addr, got, want)
		}
	}
}
