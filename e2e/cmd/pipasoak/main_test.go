package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// The soak starts its PiPA by running its own executable with
	// -serve-provider: under go test that is this test binary.
	if len(os.Args) == 2 && os.Args[1] == providerFlag {
		serveProvider()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-logins", "0"},
		{"-keep", "11", "-logins", "10"},
		{"-workers", "0"},
		{"-requests", "-1"},
		{"-timeout", "0s"},
		{"extra"},
		{"-store", "memcached"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("pipasoak %q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}

// A small soak end to end on each store: it must pass, and its report name
// every check.
func TestSmallSoak(t *testing.T) {
	for _, store := range []string{storeRedisstore, storeRedistore} {
		t.Run(store, func(t *testing.T) { testSmallSoak(t, store) })
	}
}

func testSmallSoak(t *testing.T, store string) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("PIPAAUTH_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found (PIPAAUTH_REQUIRE_REDIS=1)")
		}
		t.Skip("redis-server not found: install it with `apt-get install redis-server` to run the soak")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-logins", "40", "-requests", "400", "-workers", "4", "-keep", "5", "-timeout", "1m", "-store", store}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []string{
		"40 logins and 400 guarded requests",
		"ok   every login done: 40 of 40",
		map[string]string{storeRedisstore: "ok   Redis holds exactly the 5 live sessions: 5 session keys, DBSIZE 11", storeRedistore: "ok   Redis holds exactly the 5 live sessions: 5 session keys, DBSIZE 5"}[store],
		"ok   after they log out too, Redis holds no session: 0",
		"ok   and no key at all (indexes went with their sessions): DBSIZE 0",
		"pipasoak: PASS",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
