package main

import (
	"context"
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

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

// TestHeapNeed: the need that the limit follows is twice the runtime's live
// heap after a collection, and the stacks.
func TestHeapNeed(t *testing.T) {
	const cached = 48 << 20 // past the 40 MiB limit, as full caches would be
	held := make([][]byte, cached>>20)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	// The test process's own heap and stacks come on top, a few MiB.
	if got := heapNeed(); got < 2*cached || got > 2*cached+16<<20 {
		t.Errorf("need holding %d MiB = %d MiB; want %d MiB and the test's own", cached>>20, got>>20, 2*cached>>20)
	}
	runtime.KeepAlive(held)
	held = nil
	runtime.GC()
	if got := heapNeed(); got >= cached {
		t.Errorf("need once %d MiB are let go = %d MiB", cached>>20, got>>20)
	}
}

// TestFollowNeed: the limit follows a need that lasts the window, such as
// caches filled by a flood of requests, not one collection's burst; and
// comes back down once the need has shrunk.
func TestFollowNeed(t *testing.T) {
	const small, burst, full = 6 << 20, 60 << 20, 96 << 20
	type tick struct {
		need uint64
		want int64 // the limit set on this tick; 0 for none
	}
	var ticks []tick
	for range followWindow - 1 {
		ticks = append(ticks, tick{small, 0}) // the window is not full yet
	}
	ticks = append(ticks,
		tick{small, minMemoryLimit},
		tick{burst, minMemoryLimit}, // one collection's burst
		tick{small, minMemoryLimit},
	)
	for range followWindow - 1 {
		ticks = append(ticks, tick{full, minMemoryLimit}) // caches filling
	}
	ticks = append(ticks,
		tick{full, full + runtimeMemory}, // full for the whole window
		tick{small, minMemoryLimit},      // emptied: the smallest counts at once
	)

	var got []int64
	n := 0
	tickc := make(chan time.Time) // unbuffered: a send waits for the last tick's work
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		followNeed(ctx, tickc,
			func() uint64 { got = append(got, 0); n++; return ticks[n-1].need },
			func(limit int64) int64 { got[len(got)-1] = limit; return 0 })
	}()
	for range ticks {
		tickc <- time.Time{}
	}
	cancel()
	<-done
	for i, tk := range ticks {
		if got[i] != tk.want {
			t.Errorf("tick %d (need %d MiB): limit %d MiB; want %d MiB", i, tk.need>>20, got[i]>>20, tk.want>>20)
		}
	}
}

// TestMemoryLimitFor: 40 MiB while the need is small, then the need and
// room for the runtime.
func TestMemoryLimitFor(t *testing.T) {
	for _, tc := range []struct {
		need uint64
		want int64
	}{
		{0, minMemoryLimit},
		{6 << 20, minMemoryLimit},
		{24 << 20, minMemoryLimit},
		{96 << 20, 96<<20 + runtimeMemory},
	} {
		if got := memoryLimitFor(tc.need); got != tc.want {
			t.Errorf("memoryLimitFor(%d MiB) = %d MiB; want %d MiB", tc.need>>20, got>>20, tc.want>>20)
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
