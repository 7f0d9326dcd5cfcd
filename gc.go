package main

import "runtime/debug"

// The garbage collector's settings of the server, unless the environment
// sets Go's own GOGC or GOMEMLIMIT.
//
// authql's live heap is small, 1 to 3 MiB while it serves, so with Go's
// default GOGC of 100 the collector runs every 4 MiB allocated: some 30
// times a second at 10,000 requests a second, and each cycle's fixed work
// (waking its workers, sweeping, giving back to the kernel pages that the
// next requests fault in again) cost more CPU than authql's own work per
// request. GOGC 400 collects every 16 MiB at that heap (the README's
// Performance section has the figures). The memory limit bounds the peak
// whatever the load: past 40 MiB of Go memory the collector runs as often
// as it must. What requests without a token can fill, the throttles (at
// most 4 MiB for each of 7 kinds) and the query cache (4 MiB), holds at
// most 32 MiB: with all of it full, the collector runs about as often as
// at Go's default; set GOMEMLIMIT higher where the host has the memory.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 40 << 20
)

// tuneGC applies the server's settings of the garbage collector where
// getenv gives none.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
