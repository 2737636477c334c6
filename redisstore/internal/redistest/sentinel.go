package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinel is a local Redis Sentinel set-up: a master, a replica and one
// sentinel (quorum 1) watching them as MasterSet.
type Sentinel struct {
	MasterSet string
	Master    *Server // the master at the start
	Replica   *Server // its replica at the start
	Sentinel  *Server
}

// RequireSentinel starts a master, a synced replica and a sentinel for t,
// stopped when t ends; it skips t when redis-server or redis-sentinel is
// missing, unless PIPAAUTH_REQUIRE_REDIS=1, when it fails t. The sentinel
// declares the master down after 1 s without an answer and fails over.
func RequireSentinel(t testing.TB) *Sentinel {
	t.Helper()
	_, errS := exec.LookPath("redis-server")
	_, errC := exec.LookPath("redis-cli")
	if errS != nil || errC != nil {
		msg := "redis-server and redis-cli are needed for the Redis Sentinel tests: install redis-server and redis-sentinel"
		if os.Getenv("PIPAAUTH_REQUIRE_REDIS") == "1" {
			t.Fatalf("%s (PIPAAUTH_REQUIRE_REDIS=1: the Redis tests must run)", msg)
		}
		t.Skip(msg + ": skipping")
	}
	s := &Sentinel{MasterSet: "pipaauth-test"}
	var err error
	if s.Master, err = Start(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Master.Stop)
	if s.Replica, err = StartArgs(0, "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port), "--repl-diskless-load", "swapdb", "--dir", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Replica.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(cli(s.Replica, "info", "replication"), "master_link_status:up") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not sync with its master within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		bin, _ = exec.LookPath("redis-server") // redis-server --sentinel is the same program
	}
	dir := t.TempDir()
	for range 5 {
		var p int
		if p, err = freePort(); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", p))
		body := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nsentinel resolve-hostnames no\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
			p, dir, s.MasterSet, s.Master.Port, s.MasterSet, s.MasterSet, s.MasterSet)
		if err = os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var retry bool
		s.Sentinel, retry, err = start(bin, p, []string{conf, "--sentinel"})
		if err == nil || !retry {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Sentinel.Stop)
	// Wait until the sentinel knows the replica, or it could not fail over.
	for !strings.Contains(cli(s.Sentinel, "sentinel", "replicas", s.MasterSet), strconv.Itoa(s.Replica.Port)) {
		if time.Now().After(deadline) {
			t.Fatal("the sentinel did not discover the replica within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// MasterAddr is the master's host:port as the sentinel reports it now.
func (s *Sentinel) MasterAddr() string {
	out := strings.Fields(cli(s.Sentinel, "sentinel", "get-master-addr-by-name", s.MasterSet))
	if len(out) != 2 {
		return ""
	}
	return out[0] + ":" + out[1]
}

func cli(n *Server, args ...string) string {
	out, _ := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(n.Port)}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out))
}
