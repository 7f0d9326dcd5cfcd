package bcryptpool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waits records what a Pool tells its Observer.
type waits struct {
	mu    sync.Mutex
	waits []time.Duration
	busy  int
}

func (w *waits) ObserveBcryptWait(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, d)
}

func (w *waits) ObserveBcryptBusy() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy++
}

func (w *waits) get() ([]time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.waits...), w.busy
}

// The Observer gets the wait of every job that started, from Run to the
// start, and a call for every job refused with ErrBusy; none for a job
// whose context ended first.
func TestObserver(t *testing.T) {
	seen := &waits{}
	p, err := New(1, 100*time.Millisecond, seen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx := context.Background()

	if err := p.Run(ctx, func() {}); err != nil {
		t.Fatal(err)
	}
	// Hold the only worker.
	started, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() { held <- p.Run(ctx, func() { close(started); <-release }) }()
	<-started
	if err := p.Run(ctx, func() {}); !errors.Is(err, ErrBusy) {
		t.Fatalf("Run with the worker held = %v; want ErrBusy", err)
	}
	gone, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := p.Run(gone, func() {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run with its context ended = %v; want DeadlineExceeded", err)
	}
	// A job that waits 30ms for the worker.
	queued := make(chan error, 1)
	go func() { queued <- p.Run(ctx, func() {}) }()
	time.Sleep(30 * time.Millisecond)
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-queued; err != nil {
		t.Fatal(err)
	}

	got, busy := seen.get()
	if busy != 1 {
		t.Errorf("busy = %d; want 1", busy)
	}
	if len(got) != 3 {
		t.Fatalf("waits = %v; want 3 (the first job, the held one, the queued one)", got)
	}
	if got[2] < 30*time.Millisecond || got[2] > p.wait {
		t.Errorf("the queued job's wait = %v; want 30ms to %v", got[2], p.wait)
	}
}
