package redistest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a local Redis Cluster: masters with replicas, each a private
// redis-server on loopback.
type Cluster struct {
	Nodes []*Server // every node, in the order given to redis-cli --cluster create
}

// Addrs returns every node's host:port.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// RequireCluster starts a Cluster of masters masters with replicas replicas
// each for t, stopped when t ends; it skips t when redis-server or
// redis-cli is missing, unless PIPAAUTH_REQUIRE_REDIS=1, when it fails t.
// Nodes time out after 1 s (cluster-node-timeout), so a killed master's
// replica takes over within a few seconds.
func RequireCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	_, errS := exec.LookPath("redis-server")
	_, errC := exec.LookPath("redis-cli")
	if errS != nil || errC != nil {
		msg := "redis-server and redis-cli are needed for the Redis Cluster tests: install them with `apt-get install redis-server`"
		if os.Getenv("PIPAAUTH_REQUIRE_REDIS") == "1" {
			t.Fatalf("%s (PIPAAUTH_REQUIRE_REDIS=1: the Redis tests must run)", msg)
		}
		t.Skip(msg + ": skipping")
	}
	dir := t.TempDir()
	c := &Cluster{}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.Stop()
		}
	})
	for i := range masters * (1 + replicas) {
		var n *Server
		var err error
		for range 5 {
			var p int
			if p, err = freeClusterPort(); err != nil {
				t.Fatal(err)
			}
			// Each node its own directory: a replica's full sync writes
			// an RDB file there.
			nodeDir := fmt.Sprintf("%s/node-%d-%d", dir, i, p)
			if err := os.Mkdir(nodeDir, 0o700); err != nil {
				t.Fatal(err)
			}
			n, err = StartArgs(p, "--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "1000", "--dir", nodeDir,
				"--repl-diskless-sync-delay", "0")
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v: %s", err, out)
	}
	if err := c.WaitOK(20*time.Second, masters); err != nil {
		t.Fatal(err)
	}
	return c
}

// CLI runs redis-cli against node with args and returns its output.
func (c *Cluster) CLI(node *Server, args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(node.Port)}, args...)...).CombinedOutput()
	return string(bytes.TrimSpace(out)), err
}

// Alive returns the nodes whose process still runs.
func (c *Cluster) Alive() []*Server {
	var a []*Server
	for _, n := range c.Nodes {
		select {
		case <-n.Done():
		default:
			a = append(a, n)
		}
	}
	return a
}

// WaitOK waits until every live node reports cluster_state:ok, every
// replica has synced with its master, and the live masters number masters
// (after a master's death: until its replica has taken over).
func (c *Cluster) WaitOK(timeout time.Duration, masters int) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := len(c.Masters()) == masters
		for _, n := range c.Alive() {
			out, err := c.CLI(n, "cluster", "info")
			if err != nil || !strings.Contains(out, "cluster_state:ok") {
				ok = false
				break
			}
			// A replica that has not synced cannot take over.
			out, err = c.CLI(n, "info", "replication")
			if err != nil || strings.Contains(out, "role:slave") && !strings.Contains(out, "master_link_status:up") {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster is not ok after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Masters returns the live nodes that are masters (ROLE).
func (c *Cluster) Masters() []*Server {
	var m []*Server
	for _, n := range c.Alive() {
		out, err := c.CLI(n, "role")
		if err == nil && strings.HasPrefix(out, "master") {
			m = append(m, n)
		}
	}
	return m
}

// DBSize returns the number of keys on node.
func (c *Cluster) DBSize(node *Server) (int, error) {
	out, err := c.CLI(node, "dbsize")
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	return strconv.Atoi(out)
}

// KeySlot returns the cluster slot of key, as a node computes it.
func (c *Cluster) KeySlot(key string) (int, error) {
	alive := c.Alive()
	if len(alive) == 0 {
		return 0, errors.New("no live node")
	}
	out, err := c.CLI(alive[0], "cluster", "keyslot", key)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	return strconv.Atoi(out)
}
