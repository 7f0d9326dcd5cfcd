package auth

import (
	"context"
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
		if got, _ := bcrypt.Cost(p.dummy); got != cost {
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
