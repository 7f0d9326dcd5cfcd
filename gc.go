package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"time"
)

// The garbage collector's settings of the server, unless the environment
// sets Go's own GOGC or GOMEMLIMIT. (A GOGC that Go cannot parse counts as
// set, and Go then uses its default; a GOMEMLIMIT it cannot parse stops the
// program before main.)
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
// follows what the program needs (followLiveHeap): 40 MiB, or twice the
// live heap, the goroutine stacks and room for the rest of the runtime,
// whichever is larger.
const (
	defaultGCPercent = 400
	// minMemoryLimit is the limit while the live heap is small.
	minMemoryLimit = 40 << 20
	// runtimeMemory is room for what else GOMEMLIMIT counts beside the
	// heap and the stacks: the runtime's own structures, and memory not
	// yet given back (8 MiB of an idle server's 10 MiB).
	runtimeMemory = 16 << 20
	// followEvery and followWindow: the limit follows the smallest need of
	// the last 2 seconds, sampled 8 times.
	followEvery  = 250 * time.Millisecond
	followWindow = 8
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

// memoryLimitFor is the memory limit for a program that needs need bytes:
// its live heap twice over, and its goroutine stacks (heapNeed).
func memoryLimitFor(need uint64) int64 {
	return max(minMemoryLimit, int64(need)+runtimeMemory)
}

// followLiveHeap sets the memory limit for what the program needs, every
// followEvery, until ctx is done.
func followLiveHeap(ctx context.Context) {
	tick := time.NewTicker(followEvery)
	defer tick.Stop()
	followNeed(ctx, tick.C, heapNeed, debug.SetMemoryLimit)
}

// followNeed sets the limit by setLimit for the needs that need reads on
// every tick, taking the smallest of the last followWindow: caches fill
// over many seconds, while a collection that counted a burst's allocations
// as live (see above) is followed within the window by one that did not,
// and the limit must not follow the burst.
func followNeed(ctx context.Context, ticks <-chan time.Time, need func() uint64, setLimit func(int64) int64) {
	var window [followWindow]uint64
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			window[i%len(window)] = need()
			if i >= len(window)-1 {
				setLimit(memoryLimitFor(slices.Min(window[:])))
			}
		}
	}
}

// heapNeed is what the program needs beside the runtime's own structures:
// twice the heap that the last collection found live, so that it can
// allocate as much again between collections, and the goroutine stacks,
// which grow with connections.
func heapNeed() uint64 {
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(samples)
	var need uint64
	for i, weight := range []uint64{2, 1} {
		if samples[i].Value.Kind() == metrics.KindUint64 {
			need += weight * samples[i].Value.Uint64()
		}
	}
	return need
}
