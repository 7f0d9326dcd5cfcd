package bcryptpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// mustNew starts a Pool that the test closes.
func mustNew(tb testing.TB, workers int, wait time.Duration) *Pool {
	tb.Helper()
	p, err := New(workers, wait, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// While jobs run, the runtime has a processor more for each, so that the
// workers never hold every processor; the processors go back after.
func TestWorkersLendProcessors(t *testing.T) {
	p := mustNew(t, 2, time.Second)
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
			errs <- p.Run(context.Background(), func() {
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

// Run gives up with ErrBusy when no worker frees up in time, with the
// context's error when it ends first, and with ErrClosed after Close; fn
// does not run in any of these cases.
func TestRunErrors(t *testing.T) {
	p := mustNew(t, 1, 20*time.Millisecond)
	hold, held := make(chan struct{}), make(chan struct{})
	go p.Run(context.Background(), func() { close(held); <-hold })
	<-held // the only worker is busy

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"busy", context.Background(), ErrBusy},
		{"canceled", canceled, context.Canceled},
	} {
		if err := p.Run(tc.ctx, func() { ran = true }); !errors.Is(err, tc.want) {
			t.Errorf("%s: Run = %v; want %v", tc.name, err, tc.want)
		}
	}
	close(hold)
	p.Close()
	if err := p.Run(context.Background(), func() { ran = true }); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: Run = %v; want %v", err, ErrClosed)
	}
	if ran {
		t.Error("a job that Run refused ran")
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		workers int
		wait    time.Duration
	}{{0, time.Second}, {1, 0}, {1, -time.Second}} {
		if p, err := New(tc.workers, tc.wait, nil); err == nil {
			p.Close()
			t.Errorf("New(%d, %v) succeeded; want an error", tc.workers, tc.wait)
		}
	}
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
