package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// passwords hashes and checks passwords (and client secrets) with bcrypt at
// one cost, running at most cap(slots) bcrypt operations at once so that a
// storm of logins leaves CPU for requests that only verify tokens.
type passwords struct {
	cost int
	// dummy is a hash at cost of a password nobody has. Checking a password
	// for an unknown user compares against it, so that the answer takes as
	// long as a wrong password for a real one.
	dummy []byte
	slots chan struct{}
	// wait is how long an operation queues for a slot before the request
	// gets errPasswordsBusy.
	wait time.Duration
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
	return &passwords{cost: cost, dummy: dummy, slots: make(chan struct{}, concurrency), wait: wait}, nil
}

// errPasswordsBusy answers a request whose bcrypt work waited too long.
func errPasswordsBusy() *Error {
	return &Error{
		Code:       CodeUnavailable,
		Message:    "too many password checks at once; retry shortly",
		RetryAfter: time.Second,
	}
}

// acquire takes a bcrypt slot, waiting at most p.wait.
func (p *passwords) acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-p.slots }
	select {
	case p.slots <- struct{}{}:
		return release, nil
	default:
	}
	timer := time.NewTimer(p.wait)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, errPasswordsBusy()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hash returns the bcrypt hash of password, which the caller has validated.
func (p *passwords) hash(ctx context.Context, password string) ([]byte, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return bcrypt.GenerateFromPassword([]byte(password), p.cost)
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
	release, err := p.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password[:min(len(password), MaxPasswordBytes)]))
	release()
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
