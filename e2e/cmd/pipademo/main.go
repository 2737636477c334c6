// Command pipademo is a small web app that logs its users in with PiPA
// through the pipaauth package.
//
// With no configuration it starts an embedded PiPA (package pipatest, with a
// login and consent page) on 127.0.0.1 and serves the app on -addr:
//
//	make demo            # from the repository root
//	cd e2e && go run ./cmd/pipademo  # the same
//
// and open http://127.0.0.1:8080/. alice@example.com is in the admins group;
// bob is not.
//
// To use a real PiPA instead, set all of PIPA_ISSUER, PIPA_CLIENT_ID,
// PIPA_CLIENT_SECRET, PIPA_REDIRECT_URL (this app's /callback URL as
// registered in the PiPA console) and PIPA_SESSION_KEYS (comma-separated
// base64 keys in pairs hash,block: a hash key of 32 or more bytes and a block
// key of 16, 24 or 32 bytes). PIPA_POST_LOGOUT_REDIRECT_URL is optional.
// Secrets are read from the environment only, never from flags.
//
// Pages: / (public, with the event counts), /me (your name and groups),
// /admin (members of the admins group, and the emails set with -admins or
// PIPADEMO_ADMINS, and only with a sign-in at PiPA within the last 5
// minutes: RequireRecentLogin), /api/me (JSON), /metrics (the event
// counts in the Prometheus text format), /login, /callback and /logout
// (POST). With the embedded PiPA, the home page's button (a POST to
// /demo/clock) moves the clock of the app and the provider 10 minutes
// ahead, to show the step-up on /admin without waiting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program: it returns the exit code, 2 for a usage or
// configuration mistake and 1 when the app could not run.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipademo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "`host:port` to serve the app on")
	adminsFlag := fs.String("admins", "", "comma-separated `emails` also allowed on /admin, beside the "+adminGroup+" group (default $"+envAdmins+", else none)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pipademo [-addr host:port] [-admins emails]\n\n"+
			"Serves a demo app that logs in with PiPA. With no PIPA_* variables set it runs\n"+
			"an embedded PiPA with test users; set all of %s, %s, %s,\n"+
			"%s and %s to use a real PiPA.\n\n", envIssuer, envClientID, envClientSecret, envRedirectURL, envSessionKeys)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pipademo: unexpected argument %q (secrets go in the environment, see -help)\n", fs.Arg(0))
		return 2
	}

	adminList, source := *adminsFlag, "-admins"
	if adminList == "" {
		adminList, source = getenv(envAdmins), envAdmins
	}
	var admins []string
	if adminList != "" {
		var err error
		if admins, err = parseAdmins(adminList); err != nil {
			fmt.Fprintf(stderr, "pipademo: %s: %v\n", source, err)
			return 2
		}
	}
	pipa, err := pipaConfigFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "pipademo: %v\n", err)
		return 2
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(stderr, "pipademo: cannot serve on %s: the port is already in use (is another pipademo running?). Stop that program or pick another address, such as -addr 127.0.0.1:8081\n", *addr)
		} else {
			fmt.Fprintf(stderr, "pipademo: cannot serve on %s: %v\n", *addr, err)
		}
		return 1
	}
	defer ln.Close()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := options{Admins: admins, PiPA: pipa, Logger: log}
	if pipa == nil {
		opts.AppURL = "http://" + browserHostPort(*addr, ln.Addr())
	}
	d, err := newDemo(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "pipademo: %v\n", err)
		return 1
	}
	defer d.Close()
	printBanner(stdout, d, opts, ln.Addr())

	srv := &http.Server{
		Handler:           d.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "pipademo: serving: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	stop()
	log.Info("pipademo: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "pipademo: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// browserHostPort is the host:port a browser should use for the app: the
// host of -addr (127.0.0.1 when it is empty or 0.0.0.0/::), with the port
// actually bound.
func browserHostPort(addr string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	port := "8080"
	if tcp, ok := bound.(*net.TCPAddr); ok {
		port = strconv.Itoa(tcp.Port)
	}
	return net.JoinHostPort(host, port)
}

func printBanner(w io.Writer, d *demo, opts options, bound net.Addr) {
	if d.Provider == nil {
		fmt.Fprintf(w, "\npipademo is serving on %s with the PiPA at %s\n", bound, d.Issuer)
		fmt.Fprintf(w, "  Admins: %s\n\nPress Ctrl+C to stop.\n\n", adminsText(opts.Admins))
		return
	}
	fmt.Fprintf(w, "\npipademo is running with an embedded PiPA (local development only).\n\n")
	fmt.Fprintf(w, "  App:            %s/\n", opts.AppURL)
	fmt.Fprintf(w, "  Embedded PiPA:  %s\n", d.Provider.URL)
	fmt.Fprintf(w, "  Test users (pick one on PiPA's sign-in page, or type any email):\n")
	for _, u := range d.Provider.Users() {
		fmt.Fprintf(w, "    %-8s %s\n", u.Name, u.Email)
	}
	fmt.Fprintf(w, "  Admins (may see /admin): %s\n", adminsText(opts.Admins))
	fmt.Fprintf(w, "  /admin also needs a sign-in within the last %s: the home page's button\n"+
		"  moves the clock ahead to show the step-up. Event counts: %s/metrics\n\nPress Ctrl+C to stop.\n\n", minutes(adminMaxAge), opts.AppURL)
}

// adminsText says who may see /admin.
func adminsText(emails []string) string {
	s := "the " + adminGroup + " group (groups claim)"
	if len(emails) > 0 {
		s += "; by email: " + strings.Join(emails, ", ")
	}
	return s
}
