// Package promexample counts pipaauth's events with Prometheus: a counter
// by kind and reason, and a histogram of durations by kind. It lives in its
// own module so that pipaauth itself does not depend on client_golang; copy
// it into your application.
package promexample

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipaauth/pipaauth"
)

// Metrics turns pipaauth events into Prometheus metrics. Labels are only
// the event's kind and reason, both from small closed sets; the user id is
// never a label (unbounded cardinality, and personal data).
type Metrics struct {
	Events   *prometheus.CounterVec   // pipaauth_events_total{kind,reason}
	Duration *prometheus.HistogramVec // pipaauth_event_duration_seconds{kind}
}

// New registers the metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pipaauth_events_total",
			Help: "Logins, failed logins, logouts, refreshes, failed refreshes and session store errors, by kind and reason.",
		}, []string{"kind", "reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pipaauth_event_duration_seconds",
			Help:    "How long logins (the callback) and refreshes (the refresh call) took, by kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
	}
	reg.MustRegister(m.Events, m.Duration)
	return m
}

// OnEvent is a pipaauth Config.OnEvent: set Config.OnEvent = m.OnEvent.
// It only increments in-memory metrics, so it is fast enough to run on the
// request path.
func (m *Metrics) OnEvent(_ context.Context, e pipaauth.Event) {
	m.Events.WithLabelValues(string(e.Kind), e.Reason).Inc()
	if e.Duration > 0 {
		m.Duration.WithLabelValues(string(e.Kind)).Observe(e.Duration.Seconds())
	}
}
