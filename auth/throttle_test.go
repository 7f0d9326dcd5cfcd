package auth

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The in-memory buckets are bounded in bytes per name: a flood of distinct
// long keys leaves at most maxThrottleKeys buckets of fixed-size keys,
// forgets the fullest first, so keeps targeted accounts' empty buckets,
// and evicts no other throttle's buckets.
func TestMemoryThrottlesAreBoundedInBytes(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryThrottles().(*memoryThrottles)
	l := Limit{N: 2, Per: time.Minute}
	now := time.Unix(1_800_000_000, 0)
	var targets []Bucket // emptied before the flood
	for i := range 100 {
		targets = append(targets, Bucket{"login_user", keyOf("alice", strconv.Itoa(i))})
	}
	targets = append(targets, Bucket{"login_pair", keyOf("alice", "192.0.2.1")})
	for _, b := range targets {
		for range l.N {
			if wait, _ := m.TakeEvent(ctx, b, l, now); wait != 0 {
				t.Fatal("a fresh bucket refused a take")
			}
		}
	}
	long := strings.Repeat("x", 1000)
	for i := range maxThrottleKeys + 1000 {
		m.TakeEvent(ctx, Bucket{"login_user", keyOf(long, strconv.Itoa(i))}, l, now)
	}
	if n := len(m.names["login_user"].tat); n > maxThrottleKeys || n*bucketBytes > maxThrottleBytes {
		t.Fatalf("%d buckets after the flood; want at most %d (%d bytes)", n, maxThrottleKeys, maxThrottleBytes)
	}
	for _, b := range targets {
		if wait, _ := m.TakeEvent(ctx, b, l, now); wait == 0 {
			t.Fatalf("the flood forgot what a %s bucket counted", b.Name)
		}
	}
	if keyOf("ab", "c") == keyOf("a", "bc") {
		t.Fatal("keyOf joins its parts ambiguously")
	}
}

// One client authenticating from ever more addresses forgets only its own
// oldest ones, never another client's.
func TestMemoryKnownAddressesAreBoundedPerClient(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryThrottles().(*memoryThrottles)
	t0 := time.Unix(1_800_000_000, 0)
	backend, other := keyOf("backend"), keyOf("other")
	m.AddKnownAddress(ctx, backend, keyOf("203.0.113.10"), t0)
	for i := range maxKnownPerID + 10 {
		m.AddKnownAddress(ctx, other, keyOf(fmt.Sprint("2001:db8:", i, "::/64")), t0.Add(time.Duration(i+1)*time.Second))
	}
	known := func(id [16]byte, addr string) bool {
		ok, _ := m.KnownAddress(ctx, id, keyOf(addr), t0)
		return ok
	}
	if !known(backend, "203.0.113.10") {
		t.Error("another client's addresses evicted backend's")
	}
	if known(other, "2001:db8:0::/64") || !known(other, fmt.Sprint("2001:db8:", maxKnownPerID+9, "::/64")) {
		t.Error("other did not forget its own oldest address first")
	}
	if n := len(m.known[other]); n != maxKnownPerID {
		t.Errorf("other keeps %d addresses; want %d", n, maxKnownPerID)
	}
}
