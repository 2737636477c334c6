package redisproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Cluster is a local Redis Cluster of private redis-servers on loopback.
type Cluster struct {
	Nodes []*Server // masters first, then replicas, as redis-cli --cluster create was given them
	dir   string
}

// Addrs returns every node's host:port.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// StartCluster starts masters masters with replicas replicas each, joins
// them with redis-cli --cluster create, and waits until every node reports
// cluster_state:ok and every replica has synced. Stop it when done. It
// returns ErrNotFound when redis-server or redis-cli is missing.
func StartCluster(masters, replicas int) (_ *Cluster, err error) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, ErrNotFound
	}
	dir, err := os.MkdirTemp("", "pipaauth-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for i := range masters * (1 + replicas) {
		nodeDir := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			return nil, err
		}
		n, err := Start(Options{Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0", "--dir", nodeDir},
			portFree: busPortFree})
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.ok() {
		if time.Now().After(deadline) {
			return nil, errors.New("the cluster is not ok 30s after redis-cli --cluster create")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c, nil
}

func busPortFree(p int) bool {
	if p+10000 > 65535 {
		return false
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (c *Cluster) ok() bool {
	for _, n := range c.Nodes {
		if !strings.Contains(c.cli(n, "cluster", "info"), "cluster_state:ok") {
			return false
		}
		if r := c.cli(n, "info", "replication"); strings.Contains(r, "role:slave") && !strings.Contains(r, "master_link_status:up") {
			return false
		}
	}
	return true
}

func (c *Cluster) cli(n *Server, args ...string) string {
	out, _ := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(n.Port)}, args...)...).CombinedOutput()
	return string(out)
}

// Masters returns the nodes that are masters now (ROLE).
func (c *Cluster) Masters() []*Server {
	var m []*Server
	for _, n := range c.Nodes {
		if strings.HasPrefix(c.cli(n, "role"), "master") {
			m = append(m, n)
		}
	}
	return m
}

// Stop kills every node and removes their files.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
	os.RemoveAll(c.dir)
}
