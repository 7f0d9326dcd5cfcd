package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/metrics/metricstest"
)

// newMetricsApp starts authql with metrics on (the handler of GET /metrics
// in process, no listener), a pair throttle that refuses the fourth
// failure, and a clock of the test's own.
func newMetricsApp(t *testing.T) (*testApp, *authtest.Clock) {
	t.Helper()
	clock := authtest.NewClock(time.Now().UTC())
	ta := newTestApp(t, func(c *config) {
		c.server.metricsAddr = "127.0.0.1:0"
		c.auth.Now = clock.Now
		c.auth.LoginPairLimit = auth.Limit{N: 3, Per: 15 * time.Minute}
	})
	if ta.app.metrics == nil {
		t.Fatal("METRICS_ADDR set, but the app has no metrics handler")
	}
	return ta, clock
}

// scrapeAfter scrapes ta's metrics once the requests counted reach want:
// the edge counts a request after its handler returns, which may be just
// after the client has read the answer.
func scrapeAfter(t *testing.T, ta *testApp, want float64) metricstest.Families {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		f := metricstest.Scrape(t, ta.app.metrics)
		var n float64
		for _, v := range f.Values(t, "authql_http_requests_total") {
			n += v
		}
		if n >= want || time.Now().After(deadline) {
			return f
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsCountKnownSequence sends a known sequence of requests and
// finds each of them counted once, under the right labels, and nothing
// else.
func TestMetricsCountKnownSequence(t *testing.T) {
	ta, clock := newMetricsApp(t)
	authtest.MustCreateUser(t, ta.app.service, "alice", alicePassword)
	client, tokenURL, queryURL := ta.Client(), ta.URL+"/token", ta.URL+"/query"
	before := metricstest.Scrape(t, ta.app.metrics)
	if got := before.Values(t, "authql_logins_total"); got[`outcome="success"`] != 0 || len(got) != len(auth.LoginOutcomes) {
		t.Errorf("logins before any = %v; want every outcome at 0", got)
	}

	first := authtest.Login(t, client, tokenURL, "alice", alicePassword)
	second := authtest.Login(t, client, tokenURL, "alice", alicePassword)
	for range 3 {
		resp, body := authtest.PostForm(t, client, tokenURL, authtest.PasswordGrant("alice", "not the password"), "")
		authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")
	}
	resp, body := authtest.PostForm(t, client, tokenURL, authtest.PasswordGrant("alice", alicePassword), "")
	authtest.WantOAuth(t, resp, body, http.StatusTooManyRequests, "rate_limited")

	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}
	resp, body = authtest.PostForm(t, client, tokenURL, refresh, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	clock.Advance(11 * time.Second) // past REFRESH_REUSE_GRACE
	resp, body = authtest.PostForm(t, client, tokenURL, refresh, "")
	authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")

	if resp, gql := authtest.GraphQL(t, client, queryURL, "", `{ __typename }`, nil); resp.StatusCode != 200 || len(gql.Errors) > 0 {
		t.Fatalf("anonymous query: %d %+v", resp.StatusCode, gql.Errors)
	}
	authtest.WantMe(t, client, queryURL, second.AccessToken, "alice")
	if resp, _ := authtest.Do(t, client, getRequest(t, http.MethodGet, ta.URL+"/no/such/endpoint")); resp.StatusCode != 404 {
		t.Fatalf("unknown path: %d; want 404", resp.StatusCode)
	}

	after := scrapeAfter(t, ta, 11)
	wantValues(t, after, "authql_http_requests_total", map[string]float64{
		`code="200",route="POST /token"`: 3, // two logins, one refresh
		`code="400",route="POST /token"`: 4, // three wrong passwords, the reused refresh token
		`code="429",route="POST /token"`: 1,
		`code="200",route="POST /query"`: 2,
		`code="404",route="unmatched"`:   1,
	})
	wantCounts(t, after.Counts(t, "authql_http_request_duration_seconds"), map[string]uint64{
		`route="POST /token"`: 8,
		`route="POST /query"`: 2,
		`route="unmatched"`:   1,
	})
	wantValues(t, after, "authql_logins_total", map[string]float64{
		`outcome="success"`: 2, `outcome="invalid_grant"`: 3, `outcome="throttled"`: 1,
		`outcome="unavailable"`: 0, `outcome="rejected"`: 0, `outcome="canceled"`: 0, `outcome="error"`: 0,
	})
	wantValues(t, after, "authql_refreshes_total", map[string]float64{
		`outcome="success"`: 1, `outcome="reuse_detected"`: 1, `outcome="invalid_grant"`: 0,
		`outcome="unavailable"`: 0, `outcome="rejected"`: 0, `outcome="canceled"`: 0, `outcome="error"`: 0,
	})
	// One session revoked as stolen, one live.
	wantValues(t, after, "authql_sessions_active", map[string]float64{"": 1})

	// Five password checks (the throttled login checks none); four writes:
	// two sessions opened, one refresh token rotated, one session revoked.
	delta := func(name string) uint64 { return after.Counts(t, name)[""] - before.Counts(t, name)[""] }
	if got := delta("authql_bcrypt_queue_wait_seconds"); got != 5 {
		t.Errorf("bcrypt jobs = %d; want 5", got)
	}
	if got := delta("authql_db_write_wait_seconds"); got != 4 {
		t.Errorf("database writes = %d; want 4", got)
	}
	wantValues(t, after, "authql_bcrypt_busy_total", map[string]float64{"": 0})
	wantValues(t, after, "authql_db_write_busy_total", map[string]float64{"": 0})

	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := after[name]; !ok {
			t.Errorf("no %s: the Go runtime and process collectors are missing", name)
		}
	}
}

// TestMetricsRandomPathsAddNoLabels: 1,000 requests for distinct random
// paths are all counted under the one "unmatched" route, so that anonymous
// clients cannot grow the number of series.
func TestMetricsRandomPathsAddNoLabels(t *testing.T) {
	ta, _ := newMetricsApp(t)
	serve := func(method, target string) int {
		rec := httptest.NewRecorder()
		ta.app.handler.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec.Code
	}
	serve(http.MethodGet, "/healthz")
	serve(http.MethodGet, "/warm-up")
	before := metricstest.Scrape(t, ta.app.metrics)
	beforeRoutes := before.LabelValues("authql_http_requests_total", "route")

	// Random segments under the root and under the endpoints' own paths,
	// some percent-encoded, by GET and POST.
	prefixes := []string{"/", "/token/", "/query/", "/revoke/", "/healthz/", "/.well-known/", "/%2e%2e/"}
	seen := map[string]bool{}
	for i := 0; len(seen) < 1000; i++ {
		path := prefixes[i%len(prefixes)] + fmt.Sprintf("%016x", rand.Uint64())
		if i%3 == 0 {
			path += "/%F0%9F%94%91" + fmt.Sprintf("%x", rand.Uint32())
		}
		if seen[path] {
			continue
		}
		seen[path] = true
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodPost
		}
		if code := serve(method, path); code != http.StatusNotFound {
			t.Fatalf("%s %s = %d; want 404", method, path, code)
		}
	}

	after := metricstest.Scrape(t, ta.app.metrics)
	if got := after.LabelValues("authql_http_requests_total", "route"); !slices.Equal(got, beforeRoutes) {
		t.Errorf("routes after 1,000 random paths = %q; want %q", got, beforeRoutes)
	}
	if got := after.LabelValues("authql_http_request_duration_seconds", "route"); !slices.Equal(got, beforeRoutes) {
		t.Errorf("latency routes after 1,000 random paths = %q; want %q", got, beforeRoutes)
	}
	b, a := before.Values(t, "authql_http_requests_total"), after.Values(t, "authql_http_requests_total")
	if len(a) != len(b) {
		t.Errorf("series %v became %v", b, a)
	}
	if got := a[`code="404",route="unmatched"`] - b[`code="404",route="unmatched"`]; got != 1000 {
		t.Errorf("unmatched 404s counted = %v; want 1000", got)
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMetricsListener runs the program with METRICS_ADDR: the metrics
// listener serves GET /metrics and nothing else, the public listener does
// not serve /metrics, and both stop with the program.
func TestMetricsListener(t *testing.T) {
	metricsAddr := freeAddr(t)
	env := map[string]string{
		"DB_PATH":      filepath.Join(t.TempDir(), "authql.db"),
		"BCRYPT_COST":  "4",
		"METRICS_ADDR": metricsAddr,
	}
	base, stop := startRun(t, env)
	metricsURL := "http://" + metricsAddr + "/metrics"

	if resp, _ := authtest.Do(t, http.DefaultClient, getRequest(t, http.MethodGet, base+"/healthz")); resp.StatusCode != 200 {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}
	f := metricstest.Get(t, metricsURL)
	if got := f.Values(t, "authql_http_requests_total")[`code="200",route="GET /healthz"`]; got != 1 {
		t.Errorf("GET /healthz counted %v times; want 1", got)
	}
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("no go_goroutines")
	}

	for _, tc := range []struct {
		method, url string
		want        int
	}{
		{http.MethodGet, base + "/metrics", http.StatusNotFound},
		{http.MethodGet, base + "/metrics/", http.StatusNotFound},
		{http.MethodPost, metricsURL, http.StatusMethodNotAllowed},
		{http.MethodGet, "http://" + metricsAddr + "/", http.StatusNotFound},
		{http.MethodGet, "http://" + metricsAddr + "/healthz", http.StatusNotFound},
		{http.MethodPost, "http://" + metricsAddr + "/token", http.StatusNotFound},
	} {
		resp, body := authtest.Do(t, http.DefaultClient, getRequest(t, tc.method, tc.url))
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d; want %d", tc.method, tc.url, resp.StatusCode, tc.want)
		}
		if strings.Contains(string(body), "go_goroutines") {
			t.Errorf("%s %s shows metrics", tc.method, tc.url)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("run returned %v after cancel; want nil", err)
	}
	if resp, err := http.Get(metricsURL); err == nil {
		resp.Body.Close()
		t.Error("the metrics listener still answers after shutdown")
	}
}

// TestMetricsAddrErrors: an address that cannot be listened on stops the
// program with a message naming METRICS_ADDR, before anything is served.
func TestMetricsAddrErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for name, addr := range map[string]string{
		"unusable": "256.0.0.1:1",
		"in use":   taken.Addr().String(),
		"no port":  "localhost",
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"DB_PATH": filepath.Join(t.TempDir(), "authql.db"), "BCRYPT_COST": "4", "METRICS_ADDR": addr}
			var stdout strings.Builder
			err := run(context.Background(), []string{"authql", "-addr", "127.0.0.1:0"},
				func(k string) string { return env[k] }, strings.NewReader(""), &stdout, new(strings.Builder))
			if err == nil || !strings.Contains(err.Error(), "METRICS_ADDR") {
				t.Errorf("err = %v; want one naming METRICS_ADDR", err)
			}
		})
	}
}

// getRequest is a request without a body, for authtest.Do.
func getRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func wantValues(t *testing.T, f metricstest.Families, name string, want map[string]float64) {
	t.Helper()
	got := f.Values(t, name)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v; want %v", name, got, want)
	}
}

func wantCounts(t *testing.T, got, want map[string]uint64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("request durations observed = %v; want %v", got, want)
	}
}
