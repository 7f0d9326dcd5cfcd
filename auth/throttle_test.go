package auth

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Only failures use up a bucket; attempts in flight hold their place, so
// concurrent attempts cannot together exceed it; successes and aborts,
// however long they take and whatever happens meanwhile, cost nothing.
func TestThrottleCountsFailuresAndHoldsInFlight(t *testing.T) {
	th := newThrottle(Limit{N: 2, Per: time.Minute}) // one event back every 30s
	t0 := time.Unix(1_800_000_000, 0)
	k := keyOf("k")

	for round := range 50 { // long, overlapping successes
		now := t0.Add(time.Duration(round) * 40 * time.Second)
		if th.begin(k, now) != 0 || th.begin(k, now.Add(30*time.Second)) != 0 {
			t.Fatalf("round %d: a success used up the bucket", round)
		}
		th.end(k, now.Add(35*time.Second), false)
		th.end(k, now.Add(35*time.Second), false)
	}

	now := t0.Add(time.Hour)
	if th.begin(k, now) != 0 || th.begin(k, now) != 0 {
		t.Fatal("a fresh bucket refused an attempt")
	}
	if wait := th.begin(k, now); wait <= 0 {
		t.Fatal("a third attempt in flight was let past a bucket of two")
	}
	th.end(k, now, true)
	th.end(k, now, true)
	wait := th.begin(k, now)
	if wait < 29*time.Second || wait > 31*time.Second {
		t.Fatalf("after two failures: wait %v; want 30s", wait)
	}
	if th.begin(k, now.Add(wait)) != 0 {
		t.Fatal("still throttled once an event came back")
	}
	th.reset(k)
	if th.begin(k, now.Add(wait)) != 0 {
		t.Fatal("reset did not refill the bucket")
	}
}

// Buckets are bounded in bytes: a flood of distinct long keys leaves at
// most maxThrottleKeys buckets of fixed-size keys.
func TestThrottleIsBoundedInBytes(t *testing.T) {
	th := newThrottle(Limit{N: 2, Per: time.Minute})
	now := time.Unix(1_800_000_000, 0)
	long := strings.Repeat("x", 100_000)
	for i := range maxThrottleKeys + 1000 {
		key := keyOf(long, strconv.Itoa(i))
		th.begin(key, now)
		th.end(key, now, true) // failed: never swept as refilled
	}
	if n := len(th.buckets); n > maxThrottleKeys || n*bucketBytes > maxThrottleBytes {
		t.Fatalf("%d buckets after the flood; want at most %d (%d bytes)", n, maxThrottleKeys, maxThrottleBytes)
	}
	if keyOf("ab", "c") == keyOf("a", "bc") {
		t.Fatal("keyOf joins its parts ambiguously")
	}
}

// One client authenticating from ever more addresses forgets only its own
// oldest ones, never another client's.
func TestKnownClientAddressesArePartitioned(t *testing.T) {
	k := newKnownSet()
	t0 := time.Unix(1_800_000_000, 0)
	k.add("backend", "203.0.113.10", t0)
	for i := range maxKnownPerID + 10 {
		k.add("other", fmt.Sprint("2001:db8:", i, "::/64"), t0.Add(time.Duration(i+1)*time.Second))
	}
	if !k.has("backend", "203.0.113.10", t0) {
		t.Error("another client's addresses evicted backend's")
	}
	if k.has("other", "2001:db8:0::/64", t0) || !k.has("other", fmt.Sprint("2001:db8:", maxKnownPerID+9, "::/64"), t0) {
		t.Error("other did not forget its own oldest address first")
	}
	if n := len(k.seen[keyOf("other")]); n != maxKnownPerID {
		t.Errorf("other keeps %d addresses; want %d", n, maxKnownPerID)
	}
}
