package main

import (
	"math"
	"path/filepath"
	"runtime/debug"
	"testing"

	"authql/metrics/metricstest"
)

// TestTuneGC: the server's settings of the collector apply only where the
// environment sets none.
func TestTuneGC(t *testing.T) {
	restore := func() (int, int64) { return debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64) }
	t.Cleanup(func() { restore() })
	for _, tc := range []struct {
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{nil, defaultGCPercent, defaultMemoryLimit},
		{map[string]string{"GOGC": "100"}, 100, defaultMemoryLimit},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, defaultGCPercent, math.MaxInt64},
		{map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, 100, math.MaxInt64},
	} {
		restore()
		tuneGC(func(k string) string { return tc.env[k] })
		// Go reads GOGC and GOMEMLIMIT itself at start; tuneGC must leave
		// them be, which the values restore set show.
		if percent, limit := restore(); percent != tc.wantPercent || limit != tc.wantLimit {
			t.Errorf("env %v: GOGC %d, GOMEMLIMIT %d; want %d, %d", tc.env, percent, limit, tc.wantPercent, tc.wantLimit)
		}
	}
}

// TestServerGCSettings runs the program, as `go run .` does, and reads the
// collector's settings from its metrics: the server's own unless the
// environment gives Go's, which then win.
func TestServerGCSettings(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         []string
		wantPercent float64
		wantLimit   float64
	}{
		{"defaults", []string{"GOGC=", "GOMEMLIMIT="}, defaultGCPercent, defaultMemoryLimit},
		{"environment", []string{"GOGC=150", "GOMEMLIMIT=1GiB"}, 150, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metricsAddr := freeAddr(t)
			startBinary(t, filepath.Join(t.TempDir(), "authql.db"), append(tc.env, "METRICS_ADDR="+metricsAddr)...)
			f := metricstest.Get(t, "http://"+metricsAddr+"/metrics")
			if got := f.Values(t, "go_gc_gogc_percent")[""]; got != tc.wantPercent {
				t.Errorf("go_gc_gogc_percent = %v; want %v", got, tc.wantPercent)
			}
			if got := f.Values(t, "go_gc_gomemlimit_bytes")[""]; got != tc.wantLimit {
				t.Errorf("go_gc_gomemlimit_bytes = %v; want %v", got, tc.wantLimit)
			}
		})
	}
}
