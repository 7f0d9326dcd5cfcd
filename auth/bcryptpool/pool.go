// Package bcryptpool runs CPU-bound work (authql's bcrypt) on a fixed set of
// worker threads at a lower scheduling priority, so that a storm of logins
// is bounded and leaves the CPU to requests that only verify tokens the
// moment they need it.
//
// A Pool tunes the whole process: it changes GOMAXPROCS and the priority of
// the threads it owns. Run one Pool per process, started and closed by
// main.
package bcryptpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

var (
	// ErrBusy: no worker became free within the Pool's wait.
	ErrBusy = errors.New("bcryptpool: no worker free in time")
	// ErrClosed: the Pool was closed.
	ErrClosed = errors.New("bcryptpool: closed")
)

// Pool runs jobs on its workers. Each worker is a goroutine locked to an OS
// thread of its own at a lower priority (lowerThreadPriority), and while
// jobs run the runtime has a processor (GOMAXPROCS) more for each, so that
// the workers never hold every processor; the kernel then shares the CPUs,
// favouring the threads that are not running jobs.
type Pool struct {
	jobs chan func()
	// wait is how long a job queues for a worker before Run gives up with
	// ErrBusy.
	wait    time.Duration
	metrics Observer
	lender  procLender
	quit    chan struct{}
	stop    sync.Once
	workers sync.WaitGroup
}

// Observer is told how long each job queued before a worker took it, and
// of each job refused for want of a worker (authql's metrics package counts
// them). Its methods must be cheap and safe for concurrent use.
type Observer interface {
	// ObserveBcryptWait: a job waited this long, from Run to its start.
	ObserveBcryptWait(time.Duration)
	// ObserveBcryptBusy: Run gave up with ErrBusy.
	ObserveBcryptBusy()
}

// New starts a Pool of workers that makes a job wait at most wait for one
// of them, and tells metrics about the waits (nil: no metrics). It fails if
// workers is below 1 or wait is not positive.
func New(workers int, wait time.Duration, metrics Observer) (*Pool, error) {
	if workers < 1 {
		return nil, fmt.Errorf("bcrypt concurrency %d is below 1", workers)
	}
	if wait <= 0 {
		return nil, fmt.Errorf("bcrypt wait %v is not positive", wait)
	}
	p := &Pool{jobs: make(chan func()), wait: wait, metrics: metrics, quit: make(chan struct{})}
	p.workers.Add(workers)
	for range workers {
		go p.work()
	}
	return p, nil
}

// Run runs fn on a worker and returns once fn has returned. If no worker is
// free within the Pool's wait, fn does not run and Run returns ErrBusy; if
// ctx ends first, ctx.Err(); if the Pool is closed, ErrClosed.
func (p *Pool) Run(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	job := func() {
		defer close(done)
		fn()
	}
	start := time.Now()
	timer := time.NewTimer(p.wait)
	defer timer.Stop()
	select {
	case p.jobs <- job:
		// The send completes when a worker takes the job, so the job
		// starts now.
		if p.metrics != nil {
			p.metrics.ObserveBcryptWait(time.Since(start))
		}
	case <-timer.C:
		if p.metrics != nil {
			p.metrics.ObserveBcryptBusy()
		}
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	case <-p.quit:
		return ErrClosed
	}
	<-done
	return nil
}

// Close stops the workers once the jobs running have ended, and gives the
// runtime's lent processors back at once. Run fails with ErrClosed after.
func (p *Pool) Close() {
	p.stop.Do(func() {
		close(p.quit)
		p.workers.Wait()
		p.lender.close()
	})
}

// work runs jobs until Close, on a thread of its own at a lower priority.
func (p *Pool) work() {
	defer p.workers.Done()
	runtime.LockOSThread() // never unlocked: the thread ends with the worker
	lowerThreadPriority()
	for {
		select {
		case job := <-p.jobs:
			p.lender.start()
			job()
			p.lender.end()
		case <-p.quit:
			return
		}
	}
}

// procLender lends the runtime a processor for each job running in the
// Pool, and takes them back once no job has run for returnProcsAfter.
// Processors lent for good cost every request: on two CPUs, four processors
// made the Go scheduler and the kernel switch threads so often that a
// request took up to 30% more CPU time. The loans last a whole burst of
// logins because changing GOMAXPROCS stops the world, and stopping a
// hashing worker's thread, which runs at a lower priority, can take a while.
//
// GOMAXPROCS is the process's, which is why a process runs one Pool: two
// lenders would each take the other's loans for the base.
type procLender struct {
	mu      sync.Mutex
	base    int // GOMAXPROCS without loans
	lent    int
	running int
	lastEnd time.Time
	timer   *time.Timer // calls giveBack
}

const returnProcsAfter = time.Second

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

// close ends the loans now; no job runs any more.
func (l *procLender) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.lent > 0 {
		l.lent = 0
		runtime.GOMAXPROCS(l.base)
	}
}
