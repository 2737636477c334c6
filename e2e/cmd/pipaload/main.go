// Command pipaload measures the cost of pipaauth's guard under load with wrk.
//
// It starts an in-process PiPA (package pipatest) and an application server,
// both on 127.0.0.1 with system-chosen ports, logs in once through the real
// code flow to get a session cookie, and then runs wrk against two routes
// that answer the same small body: /bare (the handler alone) and /guarded
// (the same handler behind Auth.RequireLogin). Runs alternate, bare then
// guarded, for -pairs pairs, all with the session cookie, and the program
// prints each run's requests per second, the median of each route and the
// median over pairs of the guarded/bare ratio:
//
//	cd e2e && go run ./cmd/pipaload [-duration 10s] [-connections 32] [-threads 2] [-pairs 3] [-warmup 2s] [-store cookie]
//
// -store chooses where the guarded app keeps sessions: cookie (the
// default, sealed in the cookie), redis (a private redis-server started for
// the run, without persistence, through github.com/boj/redistore as
// docs/redis.md sets it up), redisstore (the same through this
// repository's redisstore, on rueidis with client-side caching),
// redisstore-cluster (redisstore on a private 3-master Redis Cluster, one
// rueidis cluster client), or several, comma-separated: one app per store, and each pair becomes a
// round of bare then guarded on each store, so that every guarded/bare and
// guarded/guarded-cookie ratio comes from one alternated run (make
// load-redis measures cookie,redistore,redisstore,redisstore-cluster). For
// the Redis stores it also prints the Redis commands per guarded request,
// from INFO commandstats before and after each run (summed over a
// Cluster's nodes).
//
// Before measuring it checks that /guarded answers 200 with the cookie and
// 302 without; after every run it checks that wrk saw no errors and that
// every request wrk counted reached the handler (with the user, on
// /guarded), so a run cannot silently measure redirects.
//
// wrk and the servers share the machine: the numbers are only comparable
// within one invocation, and the ratio is what to look at.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is the parsed command line.
type config struct {
	duration    time.Duration // of each measured wrk run
	warmup      time.Duration // of the unreported run per route before the pairs; 0: none
	connections int
	threads     int
	pairs       int
	stores      []appOptions // one app per store; bare runs on the first
}

// run is the whole program; it returns the exit code: 2 for a usage
// mistake, 1 when the load run could not be done or was not trustworthy.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "pipaload: %v\n", err)
		}
		return 2
	}
	wrkPath, err := exec.LookPath("wrk")
	if err != nil {
		fmt.Fprintln(stderr, "wrk not found: install it with `apt-get install wrk`")
		return 1
	}
	if err := load(ctx, cfg, wrkPath, stdout); err != nil {
		fmt.Fprintf(stderr, "pipaload: %v\n", err)
		return 1
	}
	return 0
}

// errUsage is a flag error the flag package already reported.
var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("pipaload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each measured wrk run (whole seconds)")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "length of an unreported wrk run on each route before the measured ones (0: none)")
	fs.IntVar(&cfg.connections, "connections", 32, "wrk connections (-c)")
	fs.IntVar(&cfg.threads, "threads", 2, "wrk threads (-t)")
	fs.IntVar(&cfg.pairs, "pairs", 3, "number of (bare, guarded) run pairs")
	stores := fs.String("store", storeCookie, "session stores to measure the guard with, comma-separated: "+storeCookie+", "+storeRedis+" (boj/redistore on a private redis-server), "+storeRedisstore+" (redisstore on a private redis-server), "+storeCluster+" (redisstore on a private 3-master Redis Cluster)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pipaload [flags]\n\n"+
			"Runs wrk against a bare and a guarded route of a pipaauth app on 127.0.0.1,\n"+
			"alternated, and prints requests/sec and the guarded/bare ratio. Needs wrk.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.duration < time.Second || cfg.duration > time.Hour || cfg.duration%time.Second != 0:
		return cfg, fmt.Errorf("-duration %v: use whole seconds from 1s to 1h", cfg.duration)
	case cfg.warmup < 0 || cfg.warmup > time.Hour || cfg.warmup%time.Second != 0:
		return cfg, fmt.Errorf("-warmup %v: use whole seconds up to 1h, or 0", cfg.warmup)
	case cfg.threads < 1 || cfg.connections < cfg.threads || cfg.connections > 10000:
		return cfg, fmt.Errorf("-threads %d -connections %d: need 1 <= threads <= connections <= 10000", cfg.threads, cfg.connections)
	case cfg.pairs < 1 || cfg.pairs > 100:
		return cfg, fmt.Errorf("-pairs %d: use 1 to 100", cfg.pairs)
	}
	seen := map[string]bool{}
	for _, st := range strings.Split(*stores, ",") {
		switch {
		case st != storeCookie && st != storeRedis && st != storeRedisstore && st != storeCluster:
			return cfg, fmt.Errorf("-store %q: use %s, %s, %s, %s or several, comma-separated", st, storeCookie, storeRedis, storeRedisstore, storeCluster)
		case seen[st]:
			return cfg, fmt.Errorf("-store %q: %s twice", *stores, st)
		}
		seen[st] = true
		cfg.stores = append(cfg.stores, appOptions{Store: st})
	}
	return cfg, nil
}

// load runs the whole measurement and prints the table to stdout.
func load(ctx context.Context, cfg config, wrkPath string, stdout io.Writer) error {
	var apps []*app
	var ws []wrk
	var names []string
	for _, opt := range cfg.stores {
		a, err := startApp(ctx, opt)
		if err != nil {
			return err
		}
		defer a.Close()
		cookie, err := a.login(ctx)
		if err != nil {
			return fmt.Errorf("%s: logging in through the code flow: %w", opt.Store, err)
		}
		if err := a.verify(ctx, cookie); err != nil {
			return fmt.Errorf("%s: %w", opt.Store, err)
		}
		apps = append(apps, a)
		ws = append(ws, wrk{path: wrkPath, threads: cfg.threads, connections: cfg.connections, header: "Cookie: " + cookie})
		names = append(names, opt.Store)
	}

	fmt.Fprintf(stdout, "pipaload: store=%s, wrk -t%d -c%d -d%s, %d pairs, %d CPUs, load average %s\n",
		strings.Join(names, ","), cfg.threads, cfg.connections, wrkSeconds(cfg.duration), cfg.pairs, numCPU(), loadAverage())
	// A round: bare on the first app, then guarded on each.
	round := func(ctx context.Context, d time.Duration, pair int) ([]runResult, error) {
		res, err := apps[0].measure(ctx, ws[0], routeBare, d)
		if err != nil {
			return nil, err
		}
		res.pair = pair
		runs := []runResult{res}
		for i, a := range apps {
			res, err := a.measure(ctx, ws[i], routeGuarded, d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", names[i], err)
			}
			res.pair, res.store = pair, names[i]
			runs = append(runs, res)
		}
		return runs, nil
	}
	if cfg.warmup > 0 {
		if _, err := round(ctx, cfg.warmup, 0); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	var runs []runResult
	for pair := 1; pair <= cfg.pairs; pair++ {
		rs, err := round(ctx, cfg.duration, pair)
		if err != nil {
			return fmt.Errorf("pair %d: %w", pair, err)
		}
		runs = append(runs, rs...)
	}
	if len(names) == 1 {
		printTable(stdout, runs)
	} else {
		printStoreTable(stdout, runs, names)
	}
	fmt.Fprintf(stdout, "load average after: %s\n", loadAverage())
	return nil
}

// measure runs wrk once against route and checks that every request it
// counted reached the handler.
func (a *app) measure(ctx context.Context, w wrk, route string, d time.Duration) (runResult, error) {
	before := a.served(route)
	var cmdsBefore int64
	if addrs := a.redisAddrs(); addrs != nil {
		var err error
		if cmdsBefore, err = redisCommandsAll(addrs); err != nil {
			return runResult{}, err
		}
	}
	res, err := w.run(ctx, a.URL+route, d)
	if err != nil {
		return res, fmt.Errorf("%s: %w", route, err)
	}
	if addrs := a.redisAddrs(); addrs != nil && res.requests > 0 {
		after, err := redisCommandsAll(addrs)
		if err != nil {
			return res, err
		}
		res.commands = float64(after-cmdsBefore) / float64(res.requests)
	}
	// The handler may have served a few requests wrk stopped waiting for at
	// the end of the run, never fewer than wrk counted.
	if served := a.served(route) - before; served < res.requests {
		return res, fmt.Errorf("%s: wrk counted %d responses but the handler served %d: some requests did not reach it (redirected?)", route, res.requests, served)
	}
	res.route = route
	return res, nil
}
