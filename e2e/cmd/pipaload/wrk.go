package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// wrk runs the wrk load generator.
type wrk struct {
	path                 string
	threads, connections int
	header               string // sent with every request
}

// runResult is what one wrk run reported.
type runResult struct {
	pair     int
	route    string
	store    string  // of the app measured, on the guarded route
	rps      float64 // Requests/sec
	requests int64   // responses counted
	commands float64 // Redis commands per request during the run; 0 without Redis
}

// run runs wrk against target for d and parses its report. It fails when
// wrk reports non-2xx/3xx responses or socket errors.
func (w wrk) run(ctx context.Context, target string, d time.Duration) (runResult, error) {
	// wrk stops by itself after -d; the deadline only guards against a hang.
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.path,
		"-t"+strconv.Itoa(w.threads), "-c"+strconv.Itoa(w.connections), "-d"+wrkSeconds(d),
		"-H", w.header, target)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return runResult{}, fmt.Errorf("wrk: %w: %s%s", err, errOut.Bytes(), out.Bytes())
	}
	return parseWrk(out.String())
}

var (
	reRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)\s*$`)
	reRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	reNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+([0-9]+)`)
	reSocket   = regexp.MustCompile(`(?m)^\s*Socket errors:.*$`)
)

// parseWrk reads the request rate and count of wrk's report, and fails when
// it reports error responses (status 400 or more: wrk does not count 3xx,
// which is why the caller also counts what reached the handler) or socket
// errors.
func parseWrk(out string) (runResult, error) {
	var res runResult
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		return res, fmt.Errorf("wrk saw %s Non-2xx or 3xx responses: not a valid measurement:\n%s", m[1], out)
	}
	if m := reSocket.FindString(out); m != "" {
		return res, fmt.Errorf("wrk saw socket errors (%s): not a valid measurement:\n%s", strings.TrimSpace(m), out)
	}
	m := reRPS.FindStringSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("no Requests/sec line in wrk's output:\n%s", out)
	}
	rps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return res, fmt.Errorf("wrk's Requests/sec %q: %w", m[1], err)
	}
	m = reRequests.FindStringSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("no request count in wrk's output:\n%s", out)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return res, fmt.Errorf("wrk's request count %q: %w", m[1], err)
	}
	if n == 0 || rps <= 0 {
		return res, fmt.Errorf("wrk completed no requests:\n%s", out)
	}
	res.rps, res.requests = rps, n
	return res, nil
}

// wrkSeconds formats d, a whole number of seconds, as wrk's -d wants it.
func wrkSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// printTable prints every run, each route's median and the median over
// pairs of the guarded/bare ratio. runs come in pairs: bare, then guarded.
func printTable(out io.Writer, runs []runResult) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pair\tbare req/s\tguarded req/s\tguarded/bare\t")
	var bare, guarded, ratios []float64
	for i := 0; i+1 < len(runs); i += 2 {
		b, g := runs[i], runs[i+1]
		r := g.rps / b.rps
		bare, guarded, ratios = append(bare, b.rps), append(guarded, g.rps), append(ratios, r)
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.3f\t\n", b.pair, b.rps, g.rps, r)
	}
	fmt.Fprintf(tw, "median\t%.0f\t%.0f\t%.3f\t\n", median(bare), median(guarded), median(ratios))
	tw.Flush()
	fmt.Fprintf(out, "guarded/bare = %.3f (median over %d pairs of the per-pair ratio)\n", median(ratios), len(ratios))
}

// printStoreTable prints rounds of bare then guarded on each store (in the
// order of stores): each run, the medians, and the medians over rounds of
// each guarded/bare ratio and of each further store's guarded over the
// first store's.
func printStoreTable(out io.Writer, runs []runResult, stores []string) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	n := 1 + len(stores)
	head := "pair\tbare req/s\t"
	for _, s := range stores {
		head += "guarded-" + s + " req/s\t"
	}
	for _, s := range stores {
		head += "guarded-" + s + "/bare\t"
	}
	for _, s := range stores[1:] {
		head += "guarded-" + s + "/guarded-" + stores[0] + "\t"
	}
	fmt.Fprintln(tw, head)
	cols := make([][]float64, n+len(stores)+len(stores)-1)
	for i := 0; i+n <= len(runs); i += n {
		round := runs[i : i+n]
		row := []float64{round[0].rps}
		for _, g := range round[1:] {
			row = append(row, g.rps)
		}
		for _, g := range round[1:] {
			row = append(row, g.rps/round[0].rps)
		}
		for _, g := range round[2:] {
			row = append(row, g.rps/round[1].rps)
		}
		line := fmt.Sprintf("%d\t", round[0].pair)
		for j, v := range row {
			cols[j] = append(cols[j], v)
			line += formatCell(j, n, v)
		}
		fmt.Fprintln(tw, line)
	}
	line := "median\t"
	for j, c := range cols {
		line += formatCell(j, n, median(c))
	}
	fmt.Fprintln(tw, line)
	tw.Flush()
	for j, s := range stores {
		fmt.Fprintf(out, "guarded-%s/bare = %.3f\n", s, median(cols[n+j]))
	}
	for j, s := range stores[1:] {
		fmt.Fprintf(out, "guarded-%s/guarded-%s = %.3f\n", s, stores[0], median(cols[n+len(stores)+j]))
	}
	for j, s := range stores {
		var per []float64
		for i := 0; i+n <= len(runs); i += n {
			per = append(per, runs[i+1+j].commands)
		}
		if s != storeCookie {
			fmt.Fprintf(out, "guarded-%s: Redis commands per guarded request = %.4f (median over the rounds, from INFO commandstats)\n", s, median(per))
		}
	}
	fmt.Fprintf(out, "(medians over %d rounds of the per-round ratios)\n", len(cols[0]))
}

// formatCell formats column j of a store table: rates in the first n
// columns, ratios after.
func formatCell(j, n int, v float64) string {
	if j < n {
		return fmt.Sprintf("%.0f\t", v)
	}
	return fmt.Sprintf("%.3f\t", v)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func numCPU() int { return runtime.NumCPU() }

// loadAverage is the 1-, 5- and 15-minute load average, or "unknown" off
// Linux.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
