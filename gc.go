package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"time"
)

// The garbage collector's settings of the server, unless the environment
// sets Go's own GOGC or GOMEMLIMIT (a value Go cannot parse counts as set,
// and Go then uses its default).
//
// authql's live heap is small, 1 to 3 MiB while it serves, so with Go's
// default GOGC of 100 the collector runs every 4 MiB allocated: some 30
// times a second at 10,000 requests a second, and each cycle's fixed work
// (waking its workers, sweeping, giving back to the kernel pages that the
// next requests fault in again) cost more CPU than authql's own work per
// request. GOGC 400 collects every 16 MiB at that heap (the README's
// Performance section has the figures).
//
// At GOGC 400 a burst of allocation can take the heap far past that: in a
// login storm, with the CPUs busy hashing, a collection takes long and
// counts what was allocated meanwhile as live, and the next one waits for 5
// times that (peak RSS 89 to 114 MiB in loadbench). A memory limit of 40 MiB
// keeps the peak at 52 to 57 MiB. But a fixed limit would starve a heap
// that is large for good: what requests can fill (the throttles, at most 4
// MiB for each of 7 kinds, the query cache, 4 MiB, and, with a token, the
// verified-token cache, 4 MiB, and the session cache, 8 MiB) holds up to 44
// MiB, and with the runtime's own memory that is past 40 MiB, where the
// collector would run without end, up to half the CPUs. So the limit
// follows the live heap (followLiveHeap): 40 MiB, or twice the live heap
// and room for the runtime, whichever is larger.
const (
	defaultGCPercent = 400
	// minMemoryLimit is the limit while the live heap is small.
	minMemoryLimit = 40 << 20
	// runtimeMemory is room beside the heap for what else GOMEMLIMIT
	// counts: goroutine stacks, the runtime's own structures, and memory
	// not yet given back (8 MiB of an idle server's 10 MiB).
	runtimeMemory = 16 << 20
)

// tuneGC applies the server's settings of the garbage collector where
// getenv gives none, and reports whether it set the memory limit, which
// followLiveHeap then keeps up to date.
func tuneGC(getenv func(string) string) (limitSet bool) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimitFor(0))
		return true
	}
	return false
}

// memoryLimitFor is the memory limit for a live heap of live bytes.
func memoryLimitFor(live uint64) int64 {
	return max(minMemoryLimit, 2*int64(live)+runtimeMemory)
}

// followLiveHeap sets the memory limit for the live heap every second,
// until ctx is done.
func followLiveHeap(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var w liveWindow
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if limit, ok := w.observe(liveHeap()); ok {
				debug.SetMemoryLimit(limit)
			}
		}
	}
}

// liveWindow holds the live heaps of the last 10 seconds, and sets the
// limit by the smallest: caches fill over many seconds, while a collection
// that counted a burst's allocations as live (see above) is followed by
// one that did not, and the limit must not follow the burst.
type liveWindow struct {
	samples [10]uint64
	n       int
}

// observe adds a second's live heap and returns the memory limit for the
// window, once it is full.
func (w *liveWindow) observe(live uint64) (int64, bool) {
	w.samples[w.n%len(w.samples)] = live
	w.n++
	if w.n < len(w.samples) {
		return 0, false
	}
	return memoryLimitFor(slices.Min(w.samples[:])), true
}

// liveHeap is the heap that the last collection found live, in bytes.
func liveHeap() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}
