// Package redistest runs private redis-server processes on loopback for the
// redisstore tests. It uses the standard library only: redisstore is a
// module of its own and cannot import the e2e module's redisproc, and its
// tests must not add a second Redis client to its requirements.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNotFound is returned by Start when redis-server is not on PATH.
var ErrNotFound = errors.New("redis-server not found: install it with `apt-get install redis-server` (or `make redis-install`)")

// startTimeout bounds the wait for a started server's first PONG.
const startTimeout = 10 * time.Second

// Server is a running redis-server on 127.0.0.1, without persistence.
type Server struct {
	Addr string // host:port to dial
	Port int    // the port it listens on

	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
}

// Require starts a private redis-server for t and stops it when t ends. It
// skips t when redis-server is not installed, unless the environment has
// PIPAAUTH_REQUIRE_REDIS=1 (as CI does), when it fails t instead.
func Require(t testing.TB) *Server {
	t.Helper()
	s, err := Start(0)
	if errors.Is(err, ErrNotFound) {
		if os.Getenv("PIPAAUTH_REQUIRE_REDIS") == "1" {
			t.Fatalf("%v (PIPAAUTH_REQUIRE_REDIS=1: the Redis tests must run)", err)
		}
		t.Skipf("%v: skipping the Redis tests", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts redis-server on 127.0.0.1:port (0 picks a free port, trying
// a few, since one may be taken between the probe and the bind) and waits
// until it answers PING. The process gets SIGKILL if the test binary dies
// (Pdeathsig); call Stop when done.
func Start(port int) (*Server, error) { return StartArgs(port) }

// StartArgs is Start with more redis-server arguments (such as
// "--cluster-enabled", "yes").
func StartArgs(port int, args ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotFound
	}
	var last error
	for range 5 {
		p := port
		if p == 0 {
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, retry, err := start(bin, p, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(p),
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}, args...))
		if err == nil {
			return s, nil
		}
		last = err
		if !retry || port != 0 {
			break
		}
	}
	return nil, last
}

func start(bin string, port int, args []string) (_ *Server, retry bool, _ error) {
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port: port,
		cmd:  exec.Command(bin, args...),
		out:  new(syncBuffer),
		done: make(chan struct{}),
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("starting redis-server: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-s.done:
			return nil, true, fmt.Errorf("redis-server on port %d exited at start: %s", port, s.out)
		default:
		}
		err := Ping(s.Addr, 200*time.Millisecond)
		if err == nil {
			return s, false, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, true, fmt.Errorf("redis-server on port %d does not answer PING after %s: %v; its output: %s", port, startTimeout, err, s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeClusterPort returns a free loopback port p whose cluster bus port,
// p+10000, is free too.
func freeClusterPort() (int, error) {
	for range 50 {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if p+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("no free port pair (p, p+10000) for a cluster node")
}

// Kill sends SIGKILL and waits for the process to exit: a crash, as far as
// its peers can tell.
func (s *Server) Kill() {
	s.Stop()
}

// Ping dials addr and sends an inline PING, each step bounded by timeout.
func Ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Done is closed once the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop kills the process (resuming it first if frozen) and waits for it. It
// may be called more than once.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	<-s.done
}

// Freeze stops the process (SIGSTOP): the kernel still accepts connections,
// but nothing answers them. Thaw resumes it.
func (s *Server) Freeze() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process (SIGCONT).
func (s *Server) Thaw() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// syncBuffer is the process output, written by exec's copying goroutines
// while a failed start may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
