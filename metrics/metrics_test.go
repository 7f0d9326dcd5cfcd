package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"authql/auth"
	"authql/metrics"
	"authql/metrics/metricstest"
)

// Each observer method lands in its metric, under the labels it was given.
func TestObservers(t *testing.T) {
	m := metrics.New()
	m.CountSessions(func(context.Context) (int64, error) { return 7, nil })
	m.ObserveRequest("POST /token", 200, 30*time.Millisecond)
	m.ObserveRequest("POST /token", 200, 40*time.Millisecond)
	m.ObserveRequest("POST /token", 429, time.Millisecond)
	m.ObserveRequest("unmatched", 404, time.Millisecond)
	m.ObserveLogin(auth.OutcomeSuccess)
	m.ObserveLogin(auth.OutcomeThrottled)
	m.ObserveRefresh(auth.OutcomeReuseDetected)
	m.ObserveBcryptWait(2 * time.Millisecond)
	m.ObserveBcryptWait(300 * time.Millisecond)
	m.ObserveBcryptBusy()
	m.ObserveWriteWait(time.Millisecond)
	m.ObserveWriteBusy()
	m.ObserveWriteBusy()

	f := metricstest.Scrape(t, m.Handler(slog.New(slog.DiscardHandler)))
	wantValues(t, f, "authql_http_requests_total", map[string]float64{
		`code="200",route="POST /token"`: 2,
		`code="429",route="POST /token"`: 1,
		`code="404",route="unmatched"`:   1,
	})
	wantCounts(t, f, "authql_http_request_duration_seconds", map[string]uint64{
		`route="POST /token"`: 3,
		`route="unmatched"`:   1,
	})
	logins := map[string]float64{}
	for _, o := range auth.LoginOutcomes {
		logins[`outcome="`+string(o)+`"`] = 0
	}
	logins[`outcome="success"`], logins[`outcome="throttled"`] = 1, 1
	wantValues(t, f, "authql_logins_total", logins)
	refreshes := map[string]float64{}
	for _, o := range auth.RefreshOutcomes {
		refreshes[`outcome="`+string(o)+`"`] = 0
	}
	refreshes[`outcome="reuse_detected"`] = 1
	wantValues(t, f, "authql_refreshes_total", refreshes)
	wantCounts(t, f, "authql_bcrypt_queue_wait_seconds", map[string]uint64{"": 2})
	wantValues(t, f, "authql_bcrypt_busy_total", map[string]float64{"": 1})
	wantCounts(t, f, "authql_db_write_wait_seconds", map[string]uint64{"": 1})
	wantValues(t, f, "authql_db_write_busy_total", map[string]float64{"": 2})
	wantValues(t, f, "authql_sessions_active", map[string]float64{"": 7})
	if got := f["authql_bcrypt_queue_wait_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); got < 0.301 || got > 0.303 {
		t.Errorf("bcrypt wait sum = %v; want 0.302 (seconds)", got)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
}

// The registry is the Metrics' own: nothing lands in the process-wide
// default registry, and two Metrics (two apps in one test binary) do not
// collide.
func TestOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.ObserveLogin(auth.OutcomeSuccess)
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if strings.HasPrefix(mf.GetName(), "authql_") {
			t.Errorf("%s is in the default registry", mf.GetName())
		}
	}
	f := metricstest.Scrape(t, b.Handler(slog.New(slog.DiscardHandler)))
	if got := f.Values(t, "authql_logins_total")[`outcome="success"`]; got != 0 {
		t.Errorf("the other Metrics counted %v logins; want 0", got)
	}
}

// A count of sessions that fails or times out leaves the gauge out, logs
// why, and serves the other metrics.
func TestSessionsCountFails(t *testing.T) {
	for name, count := range map[string]func(context.Context) (int64, error){
		"error": func(context.Context) (int64, error) { return 0, errors.New("disk on fire") },
		"timeout": func(ctx context.Context) (int64, error) {
			<-ctx.Done() // bounded by the collector's timeout
			return 0, ctx.Err()
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := metrics.New()
			m.CountSessions(count)
			var logs bytes.Buffer
			start := time.Now()
			f := metricstest.Scrape(t, m.Handler(slog.New(slog.NewTextHandler(&logs, nil))))
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the scrape took %v", took)
			}
			if _, ok := f["authql_sessions_active"]; ok {
				t.Error("authql_sessions_active served after its count failed")
			}
			if _, ok := f["authql_logins_total"]; !ok {
				t.Error("the other metrics were not served")
			}
			if !strings.Contains(logs.String(), "count the live sessions") {
				t.Errorf("log = %q; want the failure", logs.String())
			}
			// The failure is counted once the scrape is served: the next
			// one shows it.
			again := metricstest.Scrape(t, m.Handler(slog.New(slog.DiscardHandler)))
			if got := again.Values(t, "promhttp_metric_handler_errors_total")[`cause="gathering"`]; got != 1 {
				t.Errorf("gathering errors = %v; want 1", got)
			}
		})
	}
}

// The handler serves GET /metrics and nothing else.
func TestHandlerServesOnlyMetrics(t *testing.T) {
	h := metrics.New().Handler(slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodHead, "/metrics", http.StatusOK},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/metrics/", http.StatusNotFound},
		{http.MethodGet, "/query", http.StatusNotFound},
		{http.MethodPost, "/token", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s = %d; want %d", tc.method, tc.path, rec.Code, tc.want)
		}
	}
}

func wantValues(t *testing.T, f metricstest.Families, name string, want map[string]float64) {
	t.Helper()
	if got := f.Values(t, name); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v; want %v", name, got, want)
	}
}

func wantCounts(t *testing.T, f metricstest.Families, name string, want map[string]uint64) {
	t.Helper()
	if got := f.Counts(t, name); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s counts = %v; want %v", name, got, want)
	}
}
