package main

import (
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"authql/metrics/metricstest"
)

// restoreGC puts the collector's settings back as they were when the test
// began.
func restoreGC(t testing.TB) {
	percent := debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

// TestTuneGC: the server's settings of the collector apply only where the
// environment sets none.
func TestTuneGC(t *testing.T) {
	restoreGC(t)
	for _, tc := range []struct {
		env         map[string]string
		wantPercent int
		wantLimit   int64
		wantFollow  bool
	}{
		{nil, defaultGCPercent, minMemoryLimit, true},
		{map[string]string{"GOGC": "100"}, 100, minMemoryLimit, true},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, defaultGCPercent, math.MaxInt64, false},
		{map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, 100, math.MaxInt64, false},
	} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		follow := tuneGC(func(k string) string { return tc.env[k] })
		// Go reads GOGC and GOMEMLIMIT itself at start; tuneGC must leave
		// them be, which the values set just above stand for.
		percent := debug.SetGCPercent(100)
		if limit := debug.SetMemoryLimit(-1); percent != tc.wantPercent || limit != tc.wantLimit || follow != tc.wantFollow {
			t.Errorf("env %v: GOGC %d, GOMEMLIMIT %d, following %v; want %d, %d, %v",
				tc.env, percent, limit, follow, tc.wantPercent, tc.wantLimit, tc.wantFollow)
		}
	}
}

// TestLiveHeap: the live heap that the limit follows is the runtime's
// count after a collection.
func TestLiveHeap(t *testing.T) {
	const cached = 48 << 20 // past the 40 MiB limit, as full caches would be
	held := make([][]byte, cached>>20)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	if got := liveHeap(); got < cached {
		t.Errorf("live heap holding %d MiB = %d MiB", cached>>20, got>>20)
	}
	runtime.KeepAlive(held)
	held = nil
	runtime.GC()
	if got := liveHeap(); got >= cached {
		t.Errorf("live heap once %d MiB are let go = %d MiB", cached>>20, got>>20)
	}
}

// TestLiveWindow: the limit follows a live heap that stays for 10 seconds,
// such as caches filled by a flood of requests, not one collection's
// burst; and comes back down once the heap has shrunk for 10 seconds.
func TestLiveWindow(t *testing.T) {
	var w liveWindow
	for i := range 9 {
		if limit, ok := w.observe(3 << 20); ok {
			t.Fatalf("a limit after %d seconds: %d", i+1, limit)
		}
	}
	type step struct {
		live uint64
		want int64
	}
	steps := []step{
		{3 << 20, minMemoryLimit},  // the window is full
		{30 << 20, minMemoryLimit}, // a burst
		{3 << 20, minMemoryLimit},
	}
	for range 9 { // caches filling, not yet for 10 seconds
		steps = append(steps, step{48 << 20, minMemoryLimit})
	}
	steps = append(steps,
		step{48 << 20, 2*(48<<20) + runtimeMemory}, // for 10 seconds now
		step{3 << 20, minMemoryLimit},              // emptied: the smallest counts at once
	)
	for i, s := range steps {
		if got, ok := w.observe(s.live); !ok || got != s.want {
			t.Errorf("step %d (%d MiB live): limit %d MiB, %v; want %d MiB", i, s.live>>20, got>>20, ok, s.want>>20)
		}
	}
}

// TestMemoryLimitFor: 40 MiB while the heap is small, then twice the live
// heap and room for the runtime.
func TestMemoryLimitFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, minMemoryLimit},
		{3 << 20, minMemoryLimit},
		{12 << 20, minMemoryLimit},
		{44 << 20, 88<<20 + runtimeMemory},
	} {
		if got := memoryLimitFor(tc.live); got != tc.want {
			t.Errorf("memoryLimitFor(%d MiB) = %d MiB; want %d MiB", tc.live>>20, got>>20, tc.want>>20)
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
		{"defaults", []string{"GOGC=", "GOMEMLIMIT="}, defaultGCPercent, minMemoryLimit},
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
