package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limit is at most N events per Per, as a token bucket: N at once, then
// one every Per/N.
type Limit struct {
	N   int
	Per time.Duration
}

// ParseLimit parses "N/duration", such as "10/15m".
func ParseLimit(s string) (Limit, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, errors.New(`want N/duration, such as "10/15m"`)
	}
	var l Limit
	var err error
	if l.N, err = strconv.Atoi(n); err != nil || l.N < 1 {
		return Limit{}, fmt.Errorf("%q is not a positive count", n)
	}
	if l.Per, err = time.ParseDuration(per); err != nil || l.Per <= 0 {
		return Limit{}, fmt.Errorf("%q is not a positive duration", per)
	}
	return l, nil
}

func (l Limit) String() string { return fmt.Sprintf("%d/%s", l.N, l.Per) }

// Bucket names one token bucket: the throttle it belongs to and the
// 128-bit hash of what it counts (a username, an address, a pair).
type Bucket struct {
	Name string
	Key  [16]byte
}

// ThrottleStore keeps the token buckets of brute-force protection and the
// addresses from which clients authenticated. A bucket under Limit l holds
// l.N events and gets one back every l.Per/l.N; an unknown bucket is full.
// The Service keeps them in memory unless Config.Throttles names a store
// that every instance shares.
//
// An attempt takes an event from each of its buckets before it is checked
// and gives it back unless it failed, so that attempts in flight count: a
// crashed instance's attempts come back by themselves within l.Per. Both
// implementations compute the same GCRA: a bucket is its theoretical
// arrival time tat (Unix ns, 0 when unknown) and T is l.Per/l.N; a take at
// now computes next = max(tat, now) + T and, if next-now <= l.Per, sets
// tat = next, else waits next-now-l.Per; a return sets tat -= T.
type ThrottleStore interface {
	// TakeEvent takes one event from b at now and returns 0; or, when b has
	// none left, takes nothing and returns how long until it has one (> 0).
	TakeEvent(ctx context.Context, b Bucket, l Limit, now time.Time) (time.Duration, error)
	// ReturnEvent gives back one event taken from b, by an attempt that did
	// not fail; a bucket never holds more than l.N.
	ReturnEvent(ctx context.Context, b Bucket, l Limit) error
	// ResetBucket refills b.
	ResetBucket(ctx context.Context, b Bucket) error
	// AddKnownAddress records that the client whose id hashes to id
	// authenticated from the address that hashes to addr, at now.
	AddKnownAddress(ctx context.Context, id, addr [16]byte, now time.Time) error
	// KnownAddress reports whether that client authenticated from addr at
	// or after since.
	KnownAddress(ctx context.Context, id, addr [16]byte, since time.Time) (bool, error)
}

// keyOf returns the SHA-256 of parts, joined unambiguously, truncated to
// 128 bits: a bucket's key is the same size for a 3-letter username and
// for a 100 KB one.
func keyOf(parts ...string) [16]byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

// throttle is one guard of brute-force protection: the name of its
// buckets, stable since shared stores keep it, and their limit.
type throttle struct {
	name  string
	limit Limit
}

// bucket returns the bucket of t that counts parts.
func (t throttle) bucket(parts ...string) heldBucket {
	return heldBucket{Bucket{t.name, keyOf(parts...)}, t.limit}
}

// heldBucket is a bucket with the limit it is taken under.
type heldBucket struct {
	Bucket
	limit Limit
}

// attempt is one guess (a login, a client secret, a signup) or one refresh
// rotation, which takes an event from every bucket it belongs to before it
// is checked, so that concurrent requests cannot slip past a limit.
// Exactly one of failed, succeeded and aborted ends it.
type attempt struct {
	s    *Service
	ctx  context.Context // the request's
	at   time.Time       // when it began
	held []heldBucket
}

func (s *Service) newAttempt(ctx context.Context, now time.Time) *attempt {
	return &attempt{s: s, ctx: ctx, at: now}
}

// take takes an event for a from each of bs in order. When one is empty it
// returns how long until it has an event; then, as on an error, a has
// ended, giving back what it took.
func (a *attempt) take(bs ...heldBucket) (time.Duration, error) {
	for _, b := range bs {
		wait, err := a.tryTake(b)
		if wait > 0 || err != nil {
			a.aborted()
			return wait, err
		}
	}
	return 0, nil
}

// tryTake is take of one bucket that leaves a going when b is empty.
func (a *attempt) tryTake(b heldBucket) (time.Duration, error) {
	wait, err := a.s.guards.store.TakeEvent(a.ctx, b.Bucket, b.limit, a.at)
	if err != nil {
		return 0, fmt.Errorf("throttle %s: %w", b.Name, err)
	}
	if wait == 0 {
		a.held = append(a.held, b)
	}
	return wait, nil
}

// failed keeps the events a took: it counts against every bucket. So does
// every signup and every refresh rotation.
func (a *attempt) failed() { a.held = nil }

// aborted ends the attempt without counting it, as succeeded does: it
// failed for a reason of the server's (overload, a fault), not the
// client's, or it was throttled.
func (a *attempt) aborted() { a.succeeded() }

// succeeded ends the attempt without counting it, and refills reset, whose
// events need no giving back.
func (a *attempt) succeeded(reset ...heldBucket) {
	// The events come back even when the client went away; the log still
	// knows the request.
	ctx := context.WithoutCancel(a.ctx)
	for _, b := range reset {
		if err := a.s.guards.store.ResetBucket(ctx, b.Bucket); err != nil {
			a.s.throttleFault(ctx, "refilling a throttle bucket failed", b.Name, err)
		}
	}
	for _, b := range a.held {
		if slices.Contains(reset, b) {
			continue
		}
		if err := a.s.guards.store.ReturnEvent(ctx, b.Bucket, b.limit); err != nil {
			a.s.throttleFault(ctx, "giving back a throttle event failed", b.Name, err)
		}
	}
	a.held = nil
}

// throttleFault logs, at WARN, a fault of the throttle store after the
// check it guarded, which goes on regardless: a bucket left short catches
// up by itself within its limit's Per. The key, a hash of what the bucket
// counts, is not logged.
func (s *Service) throttleFault(ctx context.Context, msg, name string, err error) {
	s.log.WarnContext(ctx, msg, "throttle", name, "err", err)
}

// errThrottled is the answer to every throttled attempt, whatever bucket
// ran out and whether or not the account exists.
func errThrottled(what string, wait time.Duration) *Error {
	return &Error{
		Code:       CodeRateLimited,
		Message:    "too many " + what + "; retry later",
		RetryAfter: wait,
	}
}
