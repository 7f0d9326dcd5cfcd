package auth

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// An unknown user must cost one bcrypt comparison at the configured cost,
// like a wrong password for a real one.
func TestDummyHashHasConfiguredCost(t *testing.T) {
	for _, cost := range []int{4, 6} {
		p, err := newPasswords(cost, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		if got, _ := bcrypt.Cost(p.dummies[cost]); got != cost {
			t.Errorf("dummy hash cost = %d; want %d", got, cost)
		}
		if ok, _, err := p.check(context.Background(), nil, "authql dummy password, never valid"); ok || err != nil {
			t.Errorf("check(nil hash) = %v, %v; want false, nil", ok, err)
		}
	}
}

// bcrypt compares only the first 72 bytes; a longer password must not match
// a hash of its prefix.
func TestCheckRefusesPasswordsOver72Bytes(t *testing.T) {
	p, err := newPasswords(4, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	prefix := "0123456789012345678901234567890123456789012345678901234567890123456789ab"
	hash, err := p.hash(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := p.check(context.Background(), hash, prefix); !ok {
		t.Fatal("the 72-byte password does not match its own hash")
	}
	if ok, _, _ := p.check(context.Background(), hash, prefix+"c"); ok {
		t.Error("a 73-byte password matched the hash of its first 72 bytes")
	}
}

// While bcrypt jobs run, the runtime has a processor more for each, so that
// the workers never hold every processor; the processors go back after.
func TestWorkersLendProcessors(t *testing.T) {
	p, err := newPasswords(bcrypt.MinCost, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	waitFor(t, "the loans of earlier tests to end", func() bool {
		extraProcs.mu.Lock()
		defer extraProcs.mu.Unlock()
		return extraProcs.lent == 0
	})
	base := runtime.GOMAXPROCS(0)
	var (
		running, looked sync.WaitGroup
		seen            [2]int
		errs            = make(chan error, 2)
	)
	running.Add(2)
	looked.Add(2)
	for i := range seen {
		go func() {
			errs <- p.run(context.Background(), func() {
				running.Done()
				running.Wait() // both jobs hold a worker
				seen[i] = runtime.GOMAXPROCS(0)
				looked.Done()
				looked.Wait() // neither ends before both have looked
			})
		}()
	}
	for range seen {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if seen != [2]int{base + 2, base + 2} {
		t.Errorf("GOMAXPROCS during two jobs = %v; want %d", seen, base+2)
	}
	waitFor(t, fmt.Sprintf("GOMAXPROCS %d after the jobs", base), func() bool {
		return runtime.GOMAXPROCS(0) == base
	})
}

// waitFor polls cond until it holds, failing t if it does not within 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
	}
}
