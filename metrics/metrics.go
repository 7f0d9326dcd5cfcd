// Package metrics is authql's Prometheus adapter: the server's metrics in a
// registry of their own (never the process-wide default, so that nothing a
// library registers leaks into them), the observers that the core, the
// bcrypt pool, the database and the HTTP edge report to, and the handler of
// GET /metrics, which server.go serves on a listener of its own
// (METRICS_ADDR), never on the public one.
//
// It sits beside the packages it observes rather than inside one of them:
// each of them declares the small Observer interface it reports to and
// imports nothing of Prometheus, and only server.go wires them together.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"authql/auth"
)

// Metrics is the registry and the metrics in it. Its methods implement
// auth.Observer, bcryptpool.Observer, db.Observer and httpapi.Observer, and
// are safe for concurrent use. The README's Metrics section lists every
// metric.
type Metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	logins          *prometheus.CounterVec
	refreshes       *prometheus.CounterVec
	bcryptWait      prometheus.Histogram
	bcryptBusy      prometheus.Counter
	writeWait       prometheus.Histogram
	writeBusy       prometheus.Counter
}

// namespace prefixes authql's own metrics.
const namespace = "authql"

// New returns the metrics of a server, with the Go runtime's (go_*) and the
// process's (process_*), in a new registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: `HTTP requests answered, by route (the ServeMux pattern that matched, "unmatched" or "preflight") and status code.`,
		}, []string{"route", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "logins_total",
			Help: "Password logins (POST /token and the login mutation), by outcome.",
		}, []string{"outcome"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refreshes_total",
			Help: "Refresh token exchanges (POST /token and the refreshToken mutation), by outcome.",
		}, []string{"outcome"}),
		bcryptWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "bcrypt", Name: "queue_wait_seconds",
			Help:    "Time a bcrypt job (password hash or check) waited for a worker before it started.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		bcryptBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "bcrypt", Name: "busy_total",
			Help: "bcrypt jobs refused because no worker became free within BCRYPT_WAIT (answered 503).",
		}),
		writeWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "db", Name: "write_wait_seconds",
			Help:    "Time a database write waited for the writer connection and the write lock.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}),
		writeBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "db", Name: "write_busy_total",
			Help: "Database writes that gave up because the writer stayed busy (a request gets 503 with Retry-After).",
		}),
	}
	// Every outcome is there from the start, at 0, so that a rate or an
	// alert on one has a series before the first such login.
	for _, o := range auth.LoginOutcomes {
		m.logins.WithLabelValues(string(o))
	}
	for _, o := range auth.RefreshOutcomes {
		m.refreshes.WithLabelValues(string(o))
	}
	m.registry.MustRegister(
		m.requests, m.requestDuration, m.logins, m.refreshes,
		m.bcryptWait, m.bcryptBusy, m.writeWait, m.writeBusy,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// sessionsTimeout bounds the count of live sessions at each scrape.
const sessionsTimeout = time.Second

// CountSessions adds the gauge authql_sessions_active, which each scrape
// reads by calling count, given at most sessionsTimeout. A count that fails
// leaves the gauge out of that scrape (and is logged by the Handler); the
// other metrics are served. Call it once.
func (m *Metrics) CountSessions(count func(context.Context) (int64, error)) {
	m.registry.MustRegister(&sessionsCollector{
		desc: prometheus.NewDesc(namespace+"_sessions_active",
			"Sessions live at the scrape: neither revoked nor expired.", nil, nil),
		count: count,
	})
}

// Handler serves GET /metrics from the registry, in the Prometheus text
// format (or another that the scraper asks for), and nothing else: 404 for
// other paths, 405 for other methods. errorLog receives what went wrong
// while gathering.
func (m *Metrics) Handler(errorLog *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(errorLog.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		// promhttp_metric_handler_errors_total counts the failed gathers.
		Registry: m.registry,
	}))
	return mux
}

// ObserveRequest counts an answered HTTP request (httpapi.Observer).
func (m *Metrics) ObserveRequest(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.requestDuration.WithLabelValues(route).Observe(took.Seconds())
}

// ObserveLogin counts a login (auth.Observer).
func (m *Metrics) ObserveLogin(o auth.Outcome) { m.logins.WithLabelValues(string(o)).Inc() }

// ObserveRefresh counts a refresh (auth.Observer).
func (m *Metrics) ObserveRefresh(o auth.Outcome) { m.refreshes.WithLabelValues(string(o)).Inc() }

// ObserveBcryptWait records a bcrypt job's wait for a worker
// (bcryptpool.Observer).
func (m *Metrics) ObserveBcryptWait(d time.Duration) { m.bcryptWait.Observe(d.Seconds()) }

// ObserveBcryptBusy counts a bcrypt job refused (bcryptpool.Observer).
func (m *Metrics) ObserveBcryptBusy() { m.bcryptBusy.Inc() }

// ObserveWriteWait records a database write's wait for the writer
// (db.Observer).
func (m *Metrics) ObserveWriteWait(d time.Duration) { m.writeWait.Observe(d.Seconds()) }

// ObserveWriteBusy counts a database write that gave up busy (db.Observer).
func (m *Metrics) ObserveWriteBusy() { m.writeBusy.Inc() }

// sessionsCollector reads the live sessions at each scrape: a gauge kept up
// to date by every login, logout, refresh and expiry would be wrong after a
// restart and blind to the CLI's changes, while the count is one read of an
// index.
type sessionsCollector struct {
	desc  *prometheus.Desc
	count func(context.Context) (int64, error)
}

func (c *sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), sessionsTimeout)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("count the live sessions: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
