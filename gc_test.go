package main

import (
	"math"
	"runtime/debug"
	"testing"
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
