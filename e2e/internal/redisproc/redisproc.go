// Package redisproc runs private redis-server processes on loopback for pipaauth's tests, load runs and soak.
package redisproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// ErrNotFound is returned by Start when the redis-server binary is not on
// PATH (or Options.Bin does not name an executable).
var ErrNotFound = errors.New("redis-server not found: install it with `apt-get install redis-server`")

// startTimeout bounds the wait for a started server's first PONG.
const startTimeout = 10 * time.Second

// Options say how Start runs redis-server.
type Options struct {
	// Bin is the redis-server binary, looked up on PATH; "" is "redis-server".
	Bin string
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// Dir, when set, is the server's working directory and the home of its
	// RDB snapshot dump.rdb: ShutdownSave writes it, and the next server
	// started on Dir loads it. "" runs without persistence.
	Dir string
	// Args are more redis-server arguments, such as "--cluster-enabled",
	// "yes".
	Args []string
	// portFree, when set, must accept the port too (a cluster node's bus
	// port, port+10000, must be free).
	portFree func(int) bool
}

// Server is a running redis-server on 127.0.0.1.
type Server struct {
	Addr string // host:port to dial
	Port int    // the port it listens on
	Dir  string // Options.Dir

	cmd  *exec.Cmd
	out  *bytes.Buffer // the server's stdout and stderr; read only once done is closed
	done chan struct{} // closed when the process has exited
}

// Start starts redis-server on 127.0.0.1 as opt says, never saving on its
// own (no save points, no append-only file), and waits until it answers
// PING. With opt.Port 0 it tries a few free ports, since one may be taken
// between the probe and redis-server's bind. The error of a server that did
// not come up carries its output. Stop the server when done.
func Start(opt Options) (*Server, error) {
	bin := opt.Bin
	if bin == "" {
		bin = "redis-server"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, ErrNotFound
	}
	var last error
	for range 5 {
		port := opt.Port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return nil, err
			}
			if opt.portFree != nil && !opt.portFree(port) {
				last = fmt.Errorf("port %d: its pair is taken", port)
				continue
			}
		}
		s, retry, err := start(bin, port, opt.Dir, opt.Args)
		if err == nil {
			return s, nil
		}
		last = err
		if !retry || opt.Port != 0 {
			break
		}
	}
	return nil, last
}

// start runs one redis-server on port and waits for it; retry says whether
// another port may do better.
func start(bin string, port int, dir string, extra []string) (_ *Server, retry bool, _ error) {
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}
	if dir != "" {
		args = append(args, "--dir", dir, "--dbfilename", "dump.rdb")
	}
	args = append(args, extra...)
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port: port,
		Dir:  dir,
		cmd:  exec.Command(bin, args...),
		out:  new(bytes.Buffer),
		done: make(chan struct{}),
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.Dir = dir
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
			s.Stop() // before reading out, which the process writes to until it is gone
			return nil, true, fmt.Errorf("redis-server on port %d does not answer PING after %s: %v; its output: %s", port, startTimeout, err, s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Done is closed once the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop kills the process (resuming it first if frozen) and waits for it.
// It does nothing when the process has already exited, so it may be called
// more than once.
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
// but nothing answers them. Thaw resumes it (SIGCONT).
func (s *Server) Freeze() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process.
func (s *Server) Thaw() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// ShutdownSave makes the server write Dir/dump.rdb and exit, and waits for
// the exit.
func (s *Server) ShutdownSave() error {
	c, err := redis.Dial("tcp", s.Addr, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	c.Do("SHUTDOWN", "SAVE") // the server closes the connection: no reply
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("redis-server did not exit after SHUTDOWN SAVE")
	}
}

// Dial opens a connection to addr whose connect, reads and writes each time
// out after timeout.
func Dial(addr string, timeout time.Duration) (redis.Conn, error) {
	return redis.Dial("tcp", addr,
		redis.DialConnectTimeout(timeout),
		redis.DialReadTimeout(timeout),
		redis.DialWriteTimeout(timeout))
}

// Ping dials addr and sends PING, each step bounded by timeout.
func Ping(addr string, timeout time.Duration) error {
	c, err := Dial(addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Do("PING")
	return err
}

// NewPool is the pool docs/redis.md recommends: every connection has dial,
// read and write timeouts of a second, shorter than pipaauth's
// SessionStoreTimeout, so a call pipaauth gave up on ends by itself soon
// after; a connection idle for a minute or more is checked with PING before
// it is handed out. maxIdle bounds the idle connections kept.
func NewPool(addr string, maxIdle int) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     maxIdle,
		IdleTimeout: 4 * time.Minute,
		Dial: func() (redis.Conn, error) {
			return Dial(addr, time.Second)
		},
		TestOnBorrow: func(c redis.Conn, idleSince time.Time) error {
			if time.Since(idleSince) < time.Minute {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}
