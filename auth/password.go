package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// passwords hashes and checks passwords (and client secrets) with bcrypt at
// one cost. The work runs on a fixed set of worker goroutines, each locked
// to an OS thread at a lower scheduling priority, so that a storm of logins
// is bounded and leaves the CPU to requests that only verify tokens the
// moment they need it.
type passwords struct {
	cost int
	// dummy is a hash at cost of a password nobody has. Checking a password
	// for an unknown user compares against it, so that the answer takes as
	// long as a wrong password for a real one.
	dummy []byte
	jobs  chan func()
	// wait is how long an operation queues for a worker before the request
	// gets errPasswordsBusy.
	wait time.Duration
	stop sync.Once
}

func newPasswords(cost, concurrency int, wait time.Duration) (*passwords, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if concurrency < 1 {
		return nil, fmt.Errorf("bcrypt concurrency %d is below 1", concurrency)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("authql dummy password, never valid"), cost)
	if err != nil {
		return nil, err
	}
	p := &passwords{cost: cost, dummy: dummy, jobs: make(chan func()), wait: wait}
	for range concurrency {
		go p.work()
	}
	return p, nil
}

// work runs bcrypt jobs until close. Its thread is its own and runs at a
// lower priority (lowerThreadPriority), and while jobs run the runtime has a
// processor (GOMAXPROCS) more for each, so that the workers never hold every
// processor; the kernel then shares the CPUs, favouring the threads that
// are not hashing.
func (p *passwords) work() {
	runtime.LockOSThread() // never unlocked: the thread ends with the worker
	lowerThreadPriority()
	for job := range p.jobs {
		extraProcs.start()
		job()
		extraProcs.end()
	}
}

// extraProcs lends the runtime a processor for each bcrypt job running in
// the process, and takes them back once no job has run for returnProcsAfter.
// Processors lent for good cost every request: on two CPUs, four processors
// made the Go scheduler and the kernel switch threads so often that a
// request took up to 30% more CPU time. The loans last a whole burst of
// logins because changing GOMAXPROCS stops the world, and stopping a
// hashing worker's thread, which runs at a lower priority, can take a while.
var extraProcs procLender

const returnProcsAfter = time.Second

type procLender struct {
	mu      sync.Mutex
	base    int // GOMAXPROCS without loans
	lent    int
	running int
	lastEnd time.Time
	timer   *time.Timer // calls giveBack
}

func (l *procLender) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running++
	if l.running <= l.lent {
		return
	}
	if l.lent == 0 {
		l.base = runtime.GOMAXPROCS(0)
	}
	l.lent = l.running
	runtime.GOMAXPROCS(l.base + l.lent)
}

func (l *procLender) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	l.lastEnd = time.Now()
	if l.timer == nil {
		l.timer = time.AfterFunc(returnProcsAfter, l.giveBack)
	} else {
		l.timer.Reset(returnProcsAfter)
	}
}

// giveBack ends the loans if no job has run for returnProcsAfter.
func (l *procLender) giveBack() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running > 0 || l.lent == 0 {
		return
	}
	if idle := time.Since(l.lastEnd); idle < returnProcsAfter {
		l.timer.Reset(returnProcsAfter - idle)
		return
	}
	l.lent = 0
	runtime.GOMAXPROCS(l.base)
}

// close stops the workers.
func (p *passwords) close() { p.stop.Do(func() { close(p.jobs) }) }

// errPasswordsBusy answers a request whose bcrypt work waited too long.
func errPasswordsBusy() *Error {
	return &Error{
		Code:       CodeUnavailable,
		Message:    "too many password checks at once; retry shortly",
		RetryAfter: time.Second,
	}
}

// run runs fn on a worker, waiting at most p.wait for one to be free.
func (p *passwords) run(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	job := func() {
		defer close(done)
		fn()
	}
	timer := time.NewTimer(p.wait)
	defer timer.Stop()
	select {
	case p.jobs <- job:
	case <-timer.C:
		return errPasswordsBusy()
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

// hash returns the bcrypt hash of password, which the caller has validated.
func (p *passwords) hash(ctx context.Context, password string) (hash []byte, err error) {
	if runErr := p.run(ctx, func() { hash, err = bcrypt.GenerateFromPassword([]byte(password), p.cost) }); runErr != nil {
		return nil, runErr
	}
	return hash, err
}

// check reports whether password matches hash, and whether hash was made at
// a lower cost than the configured one and should be replaced. A nil hash
// (unknown user) is compared against the dummy hash and never matches. A
// password longer than bcrypt's 72 bytes never matches either, because
// bcrypt would compare only its first 72 bytes.
func (p *passwords) check(ctx context.Context, hash []byte, password string) (ok, rehash bool, err error) {
	valid := hash != nil && len(password) <= MaxPasswordBytes
	if !valid {
		hash = p.dummy
	}
	compare := func() {
		err = bcrypt.CompareHashAndPassword(hash, []byte(password[:min(len(password), MaxPasswordBytes)]))
	}
	if runErr := p.run(ctx, compare); runErr != nil {
		return false, false, runErr
	}
	switch {
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("compare password hash: %w", err)
	}
	// Every path above took one bcrypt comparison; only now may the answer
	// depend on whether the user existed.
	if !valid {
		return false, false, nil
	}
	cost, err := bcrypt.Cost(hash)
	if err != nil {
		return false, false, fmt.Errorf("read password hash cost: %w", err)
	}
	return true, cost < p.cost, nil
}
