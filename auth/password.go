package auth

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// passwords hashes and checks passwords with bcrypt at one cost.
type passwords struct {
	cost int
	// dummy is a hash at cost of a password nobody has. Checking a password
	// for an unknown user compares against it, so that the answer takes as
	// long as a wrong password for a real one.
	dummy []byte
}

func newPasswords(cost int) (*passwords, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("authql dummy password, never valid"), cost)
	if err != nil {
		return nil, err
	}
	return &passwords{cost: cost, dummy: dummy}, nil
}

// hash returns the bcrypt hash of password, which the caller has validated.
func (p *passwords) hash(password string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(password), p.cost)
}

// check reports whether password matches hash, and whether hash was made at
// a lower cost than the configured one and should be replaced. A nil hash
// (unknown user) is compared against the dummy hash and never matches. A
// password longer than bcrypt's 72 bytes never matches either, because
// bcrypt would compare only its first 72 bytes.
func (p *passwords) check(hash []byte, password string) (ok, rehash bool, err error) {
	valid := hash != nil && len(password) <= MaxPasswordBytes
	if !valid {
		hash = p.dummy
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password[:min(len(password), MaxPasswordBytes)]))
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
