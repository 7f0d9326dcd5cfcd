// Package metricstest reads authql's /metrics answer in tests, parsed by
// the Prometheus text-format parser (expfmt) as a scraper would.
package metricstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs /metrics from h, in process, and parses the answer.
func Scrape(tb testing.TB, h http.Handler) Families {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return parse(tb, rec.Result())
}

// Get scrapes url over HTTP and parses the answer.
func Get(tb testing.TB, url string) Families {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	return parse(tb, resp)
}

// parse checks that resp is a 200 in the Prometheus text format and parses
// its body.
func parse(tb testing.TB, resp *http.Response) Families {
	tb.Helper()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET /metrics = %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		tb.Fatalf("Content-Type = %q; want the Prometheus text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// family returns the family name, of type want, or fails.
func (f Families) family(tb testing.TB, name string, want dto.MetricType) *dto.MetricFamily {
	tb.Helper()
	mf, ok := f[name]
	if !ok {
		tb.Fatalf("no metric %s in the scrape", name)
	}
	if mf.GetType() != want {
		tb.Fatalf("%s is a %v; want a %v", name, mf.GetType(), want)
	}
	return mf
}

// Values returns the value of each series of the counter or gauge name,
// keyed by its labels (see Labels).
func (f Families) Values(tb testing.TB, name string) map[string]float64 {
	tb.Helper()
	mf, ok := f[name]
	if !ok {
		tb.Fatalf("no metric %s in the scrape", name)
	}
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			out[Labels(m)] = m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			out[Labels(m)] = m.GetGauge().GetValue()
		default:
			tb.Fatalf("%s is a %v; want a counter or a gauge", name, mf.GetType())
		}
	}
	return out
}

// Counts returns the sample count of each series of the histogram name,
// keyed as Values keys them.
func (f Families) Counts(tb testing.TB, name string) map[string]uint64 {
	tb.Helper()
	out := map[string]uint64{}
	for _, m := range f.family(tb, name, dto.MetricType_HISTOGRAM).GetMetric() {
		out[Labels(m)] = m.GetHistogram().GetSampleCount()
	}
	return out
}

// LabelValues returns the distinct values of label across the series of
// name, sorted.
func (f Families) LabelValues(name, label string) []string {
	var out []string
	for _, m := range f[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && !slices.Contains(out, l.GetValue()) {
				out = append(out, l.GetValue())
			}
		}
	}
	slices.Sort(out)
	return out
}

// Labels writes m's labels as name="value" pairs sorted by name and joined
// by commas, as in `code="200",route="POST /token"`; "" when it has none.
func Labels(m *dto.Metric) string {
	pairs := m.GetLabel()
	parts := make([]string, 0, len(pairs))
	for _, l := range pairs {
		parts = append(parts, l.GetName()+"="+`"`+l.GetValue()+`"`)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
