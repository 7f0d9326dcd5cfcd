package authtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"authql/auth"
)

// ThrottleStoreConformance checks that the stores open makes, an empty one
// for each subtest, keep token buckets and known client addresses as
// auth.ThrottleStore says, and as auth's in-memory store does: the Service
// counts on it. auth runs it on auth.NewMemoryThrottles; a database that
// keeps throttles runs it on its own.
func ThrottleStoreConformance(t *testing.T, open func(t *testing.T) auth.ThrottleStore) {
	for _, tc := range []struct {
		name string
		test func(*throttleTest)
	}{
		{"FailuresUseUpTheBucket", testFailuresUseUpTheBucket},
		{"SuccessesAndAbortsCostNothing", testSuccessesCostNothing},
		{"ConcurrentTakesCannotExceedN", testConcurrentTakes},
		{"ResetRefills", testResetRefills},
		{"ReturnNeverOverfills", testReturnNeverOverfills},
		{"BucketsAreApart", testBucketsAreApart},
		{"KnownAddressesPerClient", testKnownAddresses},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.test(&throttleTest{T: t, store: open(t), prefix: rand.Text()})
		})
	}
}

// throttleT0 is a whole second, so that a store that keeps time in
// microseconds computes the same waits.
var throttleT0 = time.Unix(1_800_000_000, 0)

// twoPerMinute gets one event back every 30s.
var twoPerMinute = auth.Limit{N: 2, Per: time.Minute}

type throttleTest struct {
	*testing.T
	store auth.ThrottleStore
	// prefix makes the keys of a subtest its own, should stores share a
	// database across subtests or runs.
	prefix string
}

func (tt *throttleTest) key(what string) [16]byte {
	h := sha256.Sum256([]byte(tt.prefix + what))
	return [16]byte(h[:16])
}

func (tt *throttleTest) bucket(name, what string) auth.Bucket {
	return auth.Bucket{Name: name, Key: tt.key(what)}
}

func (tt *throttleTest) take(b auth.Bucket, l auth.Limit, now time.Time) time.Duration {
	tt.Helper()
	wait, err := tt.store.TakeEvent(context.Background(), b, l, now)
	if err != nil {
		tt.Fatalf("TakeEvent(%s) at %v: %v", b.Name, now, err)
	}
	return wait
}

func (tt *throttleTest) give(b auth.Bucket, l auth.Limit) {
	tt.Helper()
	if err := tt.store.ReturnEvent(context.Background(), b, l); err != nil {
		tt.Fatalf("ReturnEvent(%s): %v", b.Name, err)
	}
}

// wantTakes checks that n takes at now succeed and the next waits wait.
func (tt *throttleTest) wantTakes(b auth.Bucket, l auth.Limit, now time.Time, n int, wait time.Duration) {
	tt.Helper()
	for i := range n {
		if w := tt.take(b, l, now); w != 0 {
			tt.Fatalf("take %d of %d at %v: wait %v; want none", i+1, n, now.Sub(throttleT0), w)
		}
	}
	if w := tt.take(b, l, now); w != wait {
		tt.Fatalf("take %d at %v: wait %v; want %v", n+1, now.Sub(throttleT0), w, wait)
	}
}

// Kept events use up the bucket; it refills one event every Per/N, and a
// refused take takes nothing.
func testFailuresUseUpTheBucket(tt *throttleTest) {
	b := tt.bucket("login_user", "alice")
	tt.wantTakes(b, twoPerMinute, throttleT0, 2, 30*time.Second)
	if w := tt.take(b, twoPerMinute, throttleT0.Add(10*time.Second)); w != 20*time.Second {
		tt.Fatalf("10s later: wait %v; want 20s", w)
	}
	tt.wantTakes(b, twoPerMinute, throttleT0.Add(30*time.Second), 1, 30*time.Second)
	tt.wantTakes(b, twoPerMinute, throttleT0.Add(30*time.Second+time.Minute), 2, 30*time.Second)
}

// Attempts that give their events back cost nothing, however long they
// take and however they overlap.
func testSuccessesCostNothing(tt *throttleTest) {
	b := tt.bucket("login_pair", "alice")
	var now time.Time
	for round := range 50 {
		now = throttleT0.Add(time.Duration(round) * 40 * time.Second)
		if tt.take(b, twoPerMinute, now) != 0 || tt.take(b, twoPerMinute, now.Add(30*time.Second)) != 0 {
			tt.Fatalf("round %d: attempts given back used up the bucket", round)
		}
		tt.give(b, twoPerMinute)
		tt.give(b, twoPerMinute)
	}
	tt.wantTakes(b, twoPerMinute, now.Add(35*time.Second), 2, 30*time.Second)
}

// Concurrent takes from one bucket get at most N events between them.
func testConcurrentTakes(tt *throttleTest) {
	b := tt.bucket("login_addr", "192.0.2.1")
	l := auth.Limit{N: 5, Per: time.Hour}
	var got atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			wait, err := tt.store.TakeEvent(context.Background(), b, l, throttleT0)
			if err != nil {
				tt.Error(err)
			}
			if err == nil && wait == 0 {
				got.Add(1)
			}
		})
	}
	wg.Wait()
	if n := got.Load(); n != int32(l.N) {
		tt.Fatalf("40 concurrent takes got %d events; want %d", n, l.N)
	}
}

// ResetBucket refills a bucket; refilling an unknown one is no fault.
func testResetRefills(tt *throttleTest) {
	b := tt.bucket("login_pair", "alice at 192.0.2.1")
	tt.wantTakes(b, twoPerMinute, throttleT0, 2, 30*time.Second)
	for range 2 {
		if err := tt.store.ResetBucket(context.Background(), b); err != nil {
			tt.Fatal(err)
		}
	}
	tt.wantTakes(b, twoPerMinute, throttleT0, 2, 30*time.Second)
}

// Events given back beyond those taken, or to an unknown bucket, never
// make a bucket hold more than N.
func testReturnNeverOverfills(tt *throttleTest) {
	unknown := tt.bucket("refresh", "a session")
	for range 3 {
		tt.give(unknown, twoPerMinute)
	}
	tt.wantTakes(unknown, twoPerMinute, throttleT0, 2, 30*time.Second)

	b := tt.bucket("refresh", "another session")
	tt.wantTakes(b, twoPerMinute, throttleT0, 1, 0)
	for range 3 {
		tt.give(b, twoPerMinute)
	}
	tt.wantTakes(b, twoPerMinute, throttleT0, 2, 30*time.Second)
}

// A bucket is its name and its key: using one up leaves the others full.
func testBucketsAreApart(tt *throttleTest) {
	tt.wantTakes(tt.bucket("login_user", "alice"), twoPerMinute, throttleT0, 2, 30*time.Second)
	tt.wantTakes(tt.bucket("password_check", "alice"), twoPerMinute, throttleT0, 2, 30*time.Second)
	tt.wantTakes(tt.bucket("login_user", "bob"), twoPerMinute, throttleT0, 2, 30*time.Second)
}

// Known addresses are per client id, and the latest success counts,
// whatever order they are recorded in.
func testKnownAddresses(tt *throttleTest) {
	ctx := context.Background()
	backend, other := tt.key("backend"), tt.key("other")
	addr, elsewhere := tt.key("203.0.113.10"), tt.key("2001:db8::/64")
	known := func(id, addr [16]byte, since time.Time) bool {
		tt.Helper()
		ok, err := tt.store.KnownAddress(ctx, id, addr, since)
		if err != nil {
			tt.Fatal(err)
		}
		return ok
	}
	add := func(id, addr [16]byte, at time.Time) {
		tt.Helper()
		if err := tt.store.AddKnownAddress(ctx, id, addr, at); err != nil {
			tt.Fatal(err)
		}
	}
	if known(backend, addr, time.Unix(0, 0)) {
		tt.Fatal("an address is known before any success")
	}
	add(backend, addr, throttleT0)
	if !known(backend, addr, throttleT0) || known(backend, addr, throttleT0.Add(time.Nanosecond)) {
		tt.Error("a success is not known from exactly its time on")
	}
	if known(other, addr, time.Unix(0, 0)) || known(backend, elsewhere, time.Unix(0, 0)) {
		tt.Error("a success is known for another client or address")
	}
	add(backend, addr, throttleT0.Add(time.Hour))
	add(backend, addr, throttleT0.Add(time.Minute))
	if !known(backend, addr, throttleT0.Add(time.Hour)) {
		tt.Error("an earlier success recorded later hid the latest")
	}
}
