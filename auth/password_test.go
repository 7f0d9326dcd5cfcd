package auth

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// An unknown user must cost one bcrypt comparison at the configured cost,
// like a wrong password for a real one.
func TestDummyHashHasConfiguredCost(t *testing.T) {
	for _, cost := range []int{4, 6} {
		p, err := newPasswords(cost, nil)
		if err != nil {
			t.Fatal(err)
		}
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
	p, err := newPasswords(4, nil)
	if err != nil {
		t.Fatal(err)
	}
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

// refusingRunner is a Runner that never runs fn and returns its error.
type refusingRunner struct{ err error }

func (r refusingRunner) Run(ctx context.Context, fn func()) error { return r.err }

// A Runner without room for the work makes the check CodeUnavailable with
// RetryAfter; the end of the request's context stays the context's error.
func TestRunnerRefusals(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		runErr error
	}{
		{"no room", context.Background(), errors.New("no worker free")},
		{"context ended", canceled, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newPasswords(4, refusingRunner{tc.runErr})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = p.check(tc.ctx, nil, "whatever")
			e, isError := errors.AsType[*Error](err)
			switch {
			case tc.ctx.Err() != nil:
				if isError || !errors.Is(err, tc.ctx.Err()) {
					t.Errorf("check = %v; want %v", err, tc.ctx.Err())
				}
			case !isError || e.Code != CodeUnavailable || e.RetryAfter <= 0:
				t.Errorf("check = %#v; want CodeUnavailable with RetryAfter", err)
			}
		})
	}
}
