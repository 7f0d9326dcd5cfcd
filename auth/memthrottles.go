package auth

import (
	"context"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// The buckets of each name are bounded in bytes, not only in number: keys
// are fixed-size hashes, whatever the length of the username or address
// they stand for, and a bucket costs at most about bucketBytes (its map
// entry: key, tat and the map's slack). Past maxThrottleKeys buckets of one
// name, that name's full ones are dropped, then those nearest to full:
// forgetting some failures beats running out of memory, and a flood of
// single guesses keeps the buckets of a targeted account, the emptiest.
// Each name has its own bound, so that flooding one throttle evicts no
// other's buckets.
const (
	bucketBytes      = 64
	maxThrottleBytes = 4 << 20
	maxThrottleKeys  = maxThrottleBytes / bucketBytes
)

// maxKnownPerID bounds the addresses remembered for one client id.
const maxKnownPerID = 1024

// NewMemoryThrottles returns the ThrottleStore that keeps everything in
// this process, for a single instance: what a Service uses without
// Config.Throttles. It is safe for concurrent use and bounded in memory:
// each bucket name keeps at most about 4 MiB of buckets, and each client id
// at most 1024 known addresses, forgetting its own oldest first, so that
// one client, however many addresses it authenticates from, cannot push
// out another's.
func NewMemoryThrottles() ThrottleStore {
	return &memoryThrottles{
		names: map[string]*memoryBuckets{},
		known: map[[16]byte]map[[16]byte]int64{},
	}
}

type memoryThrottles struct {
	mu    sync.Mutex
	names map[string]*memoryBuckets

	knownMu sync.Mutex
	// known holds, per client id, when (Unix ns) it last authenticated from
	// each address.
	known map[[16]byte]map[[16]byte]int64
}

// memoryBuckets are the buckets of one name, each as its theoretical
// arrival time (Unix ns); a bucket absent is full.
type memoryBuckets struct {
	mu  sync.Mutex
	tat map[[16]byte]int64
}

// buckets returns the buckets named name, made if there are none.
func (m *memoryThrottles) buckets(name string) *memoryBuckets {
	m.mu.Lock()
	defer m.mu.Unlock()
	bs := m.names[name]
	if bs == nil {
		bs = &memoryBuckets{tat: map[[16]byte]int64{}}
		m.names[name] = bs
	}
	return bs
}

// interval is T, how long a bucket under l takes to get one event back.
func interval(l Limit) int64 { return int64(l.Per) / int64(l.N) }

// TakeEvent implements ThrottleStore.
func (m *memoryThrottles) TakeEvent(_ context.Context, b Bucket, l Limit, now time.Time) (time.Duration, error) {
	bs := m.buckets(b.Name)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	t := now.UnixNano()
	tat, ok := bs.tat[b.Key]
	next := max(tat, t) + interval(l)
	if over := next - t - int64(l.Per); over > 0 {
		return time.Duration(over), nil
	}
	if !ok && len(bs.tat) >= maxThrottleKeys {
		bs.sweep(t)
	}
	bs.tat[b.Key] = next
	return 0, nil
}

// ReturnEvent implements ThrottleStore. A bucket absent is full already.
func (m *memoryThrottles) ReturnEvent(_ context.Context, b Bucket, l Limit) error {
	bs := m.buckets(b.Name)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if tat, ok := bs.tat[b.Key]; ok {
		bs.tat[b.Key] = tat - interval(l)
	}
	return nil
}

// ResetBucket implements ThrottleStore.
func (m *memoryThrottles) ResetBucket(_ context.Context, b Bucket) error {
	bs := m.buckets(b.Name)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	delete(bs.tat, b.Key)
	return nil
}

// sweep makes room for a bucket: it drops the full ones, then, if more
// than 9/10 of maxThrottleKeys remain, those nearest to full (the lowest
// tat) down to 9/10, so that a flood sweeps once per tenth of the bound.
// bs.mu is held.
func (bs *memoryBuckets) sweep(now int64) {
	maps.DeleteFunc(bs.tat, func(_ [16]byte, tat int64) bool { return tat <= now })
	excess := len(bs.tat) - maxThrottleKeys*9/10
	if excess <= 0 {
		return
	}
	tats := slices.Sorted(maps.Values(bs.tat))
	cut := tats[excess-1]
	below, _ := slices.BinarySearch(tats, cut)
	ties := excess - below // of the buckets at cut, how many go
	maps.DeleteFunc(bs.tat, func(_ [16]byte, tat int64) bool {
		if tat == cut && ties > 0 {
			ties--
			return true
		}
		return tat < cut
	})
}

// AddKnownAddress implements ThrottleStore.
func (m *memoryThrottles) AddKnownAddress(_ context.Context, id, addr [16]byte, now time.Time) error {
	m.knownMu.Lock()
	defer m.knownMu.Unlock()
	addrs := m.known[id]
	if addrs == nil {
		addrs = map[[16]byte]int64{}
		m.known[id] = addrs
	}
	if _, ok := addrs[addr]; !ok && len(addrs) >= maxKnownPerID {
		oldest, at := [16]byte{}, int64(math.MaxInt64)
		for a, t := range addrs {
			if t < at {
				oldest, at = a, t
			}
		}
		delete(addrs, oldest)
	}
	// Requests end out of order: the latest success counts.
	addrs[addr] = max(addrs[addr], now.UnixNano())
	return nil
}

// KnownAddress implements ThrottleStore.
func (m *memoryThrottles) KnownAddress(_ context.Context, id, addr [16]byte, since time.Time) (bool, error) {
	m.knownMu.Lock()
	defer m.knownMu.Unlock()
	t, ok := m.known[id][addr]
	return ok && t >= since.UnixNano(), nil
}
