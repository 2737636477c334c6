package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/pipaauth/pipaauth"
)

// eventCounts counts pipaauth's events (Config.OnEvent) by kind and reason,
// in memory; safe for concurrent use. Events never hold a code, token,
// state, nonce, cookie or secret, and only their kind and reason are kept:
// no user ids, which would make a metric per user.
type eventCounts struct {
	mu     sync.Mutex
	counts map[eventKey]uint64
}

type eventKey struct {
	Kind   pipaauth.EventKind
	Reason string // "" on success
}

// eventCount is one line of the counts, for pages.
type eventCount struct {
	Kind   string
	Reason string
	Count  uint64
}

// OnEvent is the Config.OnEvent hook.
func (c *eventCounts) OnEvent(_ context.Context, e pipaauth.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[eventKey]uint64)
	}
	c.counts[eventKey{e.Kind, e.Reason}]++
}

// Snapshot returns the counts so far, sorted by kind, then reason.
func (c *eventCounts) Snapshot() []eventCount {
	c.mu.Lock()
	out := make([]eventCount, 0, len(c.counts))
	for k, n := range c.counts {
		out = append(out, eventCount{Kind: string(k.Kind), Reason: k.Reason, Count: n})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b eventCount) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

// metricsContentType is the Prometheus text exposition format, version
// 0.0.4.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// ServeHTTP serves the counts in the Prometheus text exposition format:
//
//	pipademo_auth_events_total{kind="login",reason=""} 2
//
// A real application would count with github.com/prometheus/client_golang
// (see e2e/examples/prometheus); the demo keeps its counts in plain Go.
func (c *eventCounts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	b.WriteString("# HELP pipademo_auth_events_total Outcomes pipaauth reported through Config.OnEvent since the demo started, by kind and reason (\"\" on success).\n")
	b.WriteString("# TYPE pipademo_auth_events_total counter\n")
	for _, e := range c.Snapshot() {
		fmt.Fprintf(&b, "pipademo_auth_events_total{kind=\"%s\",reason=\"%s\"} %d\n", escapeLabel(e.Kind), escapeLabel(e.Reason), e.Count)
	}
	h := w.Header()
	h.Set("Content-Type", metricsContentType)
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodHead {
		fmt.Fprint(w, b.String())
	}
}

// labelEscaper escapes a label value as the text exposition format wants:
// backslash, double quote and line feed.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
