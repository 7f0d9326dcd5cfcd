package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Runner runs bcrypt work off the caller's goroutine, so that the process
// can bound and schedule it (authql's server passes a *bcryptpool.Pool).
//
// Run runs fn and returns nil once fn has returned. If ctx ends before fn
// starts, Run returns ctx.Err() and fn does not run. Any other error means
// that fn did not run because the Runner had no room for it in time (or is
// closing); the Service then answers CodeUnavailable with RetryAfter.
type Runner interface {
	Run(ctx context.Context, fn func()) error
}

// passwords hashes and checks passwords (and client secrets) with bcrypt at
// one cost, on its Runner when it has one.
//
// Every check takes at least as long as a comparison at the floor cost: the
// configured cost, or the highest cost of a stored hash if that is higher.
// An unknown user is compared against a dummy hash at the floor cost; a
// hash at a lower cost is compared, then the answer waits out the
// difference. So the answer's timing never tells whether the user exists,
// whatever cost its hash was made at (by an older configuration, or by the
// CLI with another one).
type passwords struct {
	cost int
	// runner runs the bcrypt work; nil runs it on the caller's goroutine.
	runner Runner

	mu    sync.Mutex
	floor int
	// dummies are hashes, by cost, of a password nobody has.
	dummies map[int][]byte
	// took is a moving average of how long a comparison takes, by cost.
	took map[int]time.Duration
}

// dummyPassword is hashed into the dummy hashes; no password matches them,
// since a check never compares a real user's password against them.
const dummyPassword = "authql dummy password, never valid"

func newPasswords(cost int, runner Runner) (*passwords, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	p := &passwords{cost: cost, floor: cost, runner: runner,
		dummies: map[int][]byte{}, took: map[int]time.Duration{}}
	start := time.Now()
	if _, err := p.dummy(cost); err != nil {
		return nil, err
	}
	p.observe(cost, time.Since(start)) // making a hash takes as long as comparing
	return p, nil
}

// dummy returns the dummy hash at cost, making it on first use.
func (p *passwords) dummy(cost int) ([]byte, error) {
	p.mu.Lock()
	hash := p.dummies[cost]
	p.mu.Unlock()
	if hash != nil {
		return hash, nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(dummyPassword), cost)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dummies[cost] = hash
	return hash, nil
}

// raiseFloor makes every later check cost at least a comparison at cost.
// The dummy hash at the new floor is made first, so that no check pays for
// making it (which would take as long again as a comparison).
func (p *passwords) raiseFloor(cost int) {
	cost = min(cost, bcrypt.MaxCost)
	p.mu.Lock()
	raise := cost > p.floor
	p.mu.Unlock()
	if !raise {
		return
	}
	if _, err := p.dummy(cost); err != nil {
		return // the floor stays; checks fall back to making it
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.floor = max(p.floor, cost)
}

// observe records that a comparison at cost took d.
func (p *passwords) observe(cost int, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.took[cost]; ok {
		d = prev - prev/8 + d/8
	}
	p.took[cost] = d
}

// expected is how long a comparison at cost takes: measured, or derived
// from a measured cost (each step doubles the work).
func (p *passwords) expected(cost int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := p.took[cost]; ok {
		return d
	}
	d := p.took[p.cost]
	for c := p.cost; c < cost; c++ {
		d *= 2
	}
	for c := p.cost; c > cost; c-- {
		d /= 2
	}
	return d
}

// errPasswordsBusy answers a request whose bcrypt work waited too long.
func errPasswordsBusy() *Error {
	return &Error{
		Code:       CodeUnavailable,
		Message:    "too many password checks at once; retry shortly",
		RetryAfter: time.Second,
	}
}

// run runs fn on the runner, or on the caller's goroutine without one. A
// runner without room for fn makes it errPasswordsBusy.
func (p *passwords) run(ctx context.Context, fn func()) error {
	if p.runner == nil {
		fn()
		return nil
	}
	err := p.runner.Run(ctx, fn)
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return err
	}
	return errPasswordsBusy()
}

// hash returns the bcrypt hash of password, which the caller has validated.
func (p *passwords) hash(ctx context.Context, password string) (hash []byte, err error) {
	if runErr := p.run(ctx, func() { hash, err = bcrypt.GenerateFromPassword([]byte(password), p.cost) }); runErr != nil {
		return nil, runErr
	}
	return hash, err
}

// check reports whether password matches hash, and whether hash was made at
// another cost than the configured one and should be replaced. A nil hash
// (unknown user) is compared against the dummy hash at the floor cost and
// never matches. A password longer than bcrypt's 72 bytes never matches
// either, because bcrypt would compare only its first 72 bytes. However the
// check ends, it takes at least as long as a comparison at the floor cost.
func (p *passwords) check(ctx context.Context, hash []byte, password string) (ok, rehash bool, err error) {
	valid := hash != nil && len(password) <= MaxPasswordBytes
	p.mu.Lock()
	floor := p.floor
	p.mu.Unlock()
	cost := floor
	if valid {
		if cost, err = bcrypt.Cost(hash); err != nil {
			return false, false, fmt.Errorf("read password hash cost: %w", err)
		}
	}
	var took time.Duration
	compare := func() {
		if !valid {
			if hash, err = p.dummy(floor); err != nil {
				return
			}
		}
		start := time.Now()
		err = bcrypt.CompareHashAndPassword(hash, []byte(password[:min(len(password), MaxPasswordBytes)]))
		took = time.Since(start)
	}
	if runErr := p.run(ctx, compare); runErr != nil {
		return false, false, runErr
	}
	p.observe(cost, took)
	switch {
	case cost > floor:
		p.raiseFloor(cost) // from now on, unknown users cost as much
	case cost < floor:
		// Wait out the rest of a comparison at the floor cost, off the
		// runner: the answer must not come sooner for this user than for
		// an unknown one.
		pad := time.NewTimer(p.expected(floor) - took)
		select {
		case <-pad.C:
		case <-ctx.Done():
			pad.Stop()
			return false, false, ctx.Err()
		}
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
	return true, cost != p.cost, nil
}
