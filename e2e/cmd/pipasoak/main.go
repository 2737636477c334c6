// Command pipasoak is pipaauth's soak test: many logins and guarded
// requests, over loopback, against two application instances behind a
// round-robin reverse proxy with sessions in Redis, and checks at the end
// that nothing went wrong and nothing piled up.
//
//	cd e2e && go run ./cmd/pipasoak [-logins 10000] [-requests 100000] [-workers 16] [-keep 100] [-timeout 10m] [-store redisstore]
//
// It starts a private redis-server (no persistence) on a free loopback port,
// an in-process PiPA (package pipatest) in a child process of its own, so
// that the provider's bookkeeping of every token it issued does not count
// against the heap bound, and in this process two pipaauth instances built
// from one Config (sessions in Redis through -store: redisstore, the
// default, each instance with its own rueidis client, or
// github.com/boj/redistore) and a
// round-robin reverse proxy in front of them, which is the application's
// public URL. Then -workers workers share -logins simulated browsers: each
// logs in through the proxy (the login starts on one instance and finishes
// on the other), makes its share of the -requests guarded requests, and
// logs out, except -keep browsers spread over the run, which stay logged
// in. Everything is bounded in count, and the whole run by -timeout.
//
// At the end it checks that there was no error at all (every answer as
// expected, no warning or error logged by pipaauth), that the goroutine
// count and the heap in use (after a GC, idle connections closed) grew by at
// most -max-goroutines and -max-heap-mib since the warm-up, that Redis holds
// exactly the -keep live sessions (and, with redisstore, their sub and sid
// indexes), each key with a TTL within the session lifetime, that the kept browsers are still logged in, and that after they
// log out Redis holds nothing. It prints a short report and exits 1 when a
// check failed, 2 for a usage mistake.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pipaauth/pipaauth/pipatest"
)

// providerFlag makes the program serve pipatest on loopback, print its URL
// on a line and run until its standard input closes: the soak starts its
// PiPA that way, in a child process.
const providerFlag = "-serve-provider"

func main() {
	if len(os.Args) == 2 && os.Args[1] == providerFlag {
		serveProvider()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func serveProvider() {
	p := pipatest.NewServer()
	fmt.Println(p.URL)
	io.Copy(io.Discard, os.Stdin) // until the parent closes the pipe or dies
	p.Close()
}

// config is the parsed command line.
type config struct {
	logins, requests, workers, keep int
	timeout                         time.Duration
	maxGoroutines                   int
	maxHeapMiB                      int
	redisServer                     string
	store                           string // storeRedisstore or storeRedistore
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("pipasoak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.logins, "logins", 10000, "simulated browsers, each logging in once")
	fs.IntVar(&c.requests, "requests", 100000, "guarded requests, shared among the browsers")
	fs.IntVar(&c.workers, "workers", 16, "browsers at work at once")
	fs.IntVar(&c.keep, "keep", 100, "browsers that stay logged in at the end (spread over the run)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.IntVar(&c.maxGoroutines, "max-goroutines", 20, "allowed growth of the goroutine count")
	fs.IntVar(&c.maxHeapMiB, "max-heap-mib", 32, "allowed growth of the heap in use, in MiB")
	fs.StringVar(&c.redisServer, "redis-server", "redis-server", "the redis-server binary to start")
	fs.StringVar(&c.store, "store", storeRedisstore, "session store: "+storeRedisstore+" (rueidis, client-side caching) or "+storeRedistore+" (boj/redistore)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipasoak [flags]\n\nSoak two pipaauth instances behind a round-robin proxy, with sessions in a private Redis.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.logins < 1 || c.requests < 0 || c.workers < 1 || c.keep < 0 || c.keep > c.logins:
		return c, errors.New("want -logins ≥ 1, -requests ≥ 0, -workers ≥ 1 and 0 ≤ -keep ≤ -logins")
	case c.timeout <= 0 || c.maxGoroutines < 0 || c.maxHeapMiB < 0:
		return c, errors.New("want a positive -timeout and non-negative bounds")
	case c.store != storeRedisstore && c.store != storeRedistore:
		return c, fmt.Errorf("-store %q: use %s or %s", c.store, storeRedisstore, storeRedistore)
	}
	return c, nil
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "pipasoak: %v\n", err)
		return 2
	}
	rep, err := soak(ctx, cfg, stdout)
	if rep != nil {
		rep.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pipasoak: FAIL: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "pipasoak: PASS")
	return 0
}

// bufferedLine reads one line from r within d.
func bufferedLine(r io.Reader, d time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			return "", res.err
		}
		return res.line[:len(res.line)-1], nil
	case <-time.After(d):
		return "", fmt.Errorf("no line within %s", d)
	}
}
