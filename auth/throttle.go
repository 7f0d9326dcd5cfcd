package auth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
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

// maxThrottleKeys bounds the memory of a throttle under a flood of distinct
// usernames or addresses: past it, buckets that have refilled are dropped,
// and if none has, arbitrary ones (forgetting some failures beats running
// out of memory).
const maxThrottleKeys = 100_000

// throttle counts failed attempts per key in token buckets
// (golang.org/x/time/rate), together with the attempts still in flight, so
// that concurrent attempts cannot together exceed what the bucket holds.
type throttle struct {
	limit   Limit
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	failures *rate.Limiter
	inFlight int
}

func newThrottle(l Limit) *throttle {
	return &throttle{limit: l, buckets: map[string]*bucket{}}
}

func (t *throttle) newLimiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(t.limit.N)/t.limit.Per.Seconds()), t.limit.N)
}

// begin starts an attempt for key at now, or, when the failures left in the
// bucket are all spoken for, returns how long until one is free.
func (t *throttle) begin(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.buckets[key]
	if !ok {
		if len(t.buckets) >= maxThrottleKeys {
			t.sweep(now)
		}
		b = &bucket{failures: t.newLimiter()}
		t.buckets[key] = b
	}
	if deficit := float64(b.inFlight+1) - b.failures.TokensAt(now); deficit > 0 {
		return time.Duration(deficit / float64(b.failures.Limit()) * float64(time.Second))
	}
	b.inFlight++
	return 0
}

// end ends an attempt for key begun earlier; a failed one uses up one event
// of the bucket, which begin kept free for it.
func (t *throttle) end(key string, now time.Time, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.buckets[key]; ok {
		b.inFlight--
		if failed {
			b.failures.AllowN(now, 1)
		}
	}
}

// reset refills key's bucket, as after a successful login.
func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.buckets[key]; ok {
		b.failures = t.newLimiter()
	}
}

// sweep drops idle, full buckets, then, if still too many, arbitrary idle
// ones. t.mu is held.
func (t *throttle) sweep(now time.Time) {
	for k, b := range t.buckets {
		if b.inFlight == 0 && b.failures.TokensAt(now) >= float64(t.limit.N) {
			delete(t.buckets, k)
		}
	}
	for k, b := range t.buckets {
		if len(t.buckets) < maxThrottleKeys*9/10 {
			break
		}
		if b.inFlight == 0 {
			delete(t.buckets, k)
		}
	}
}

// loginAttempt is one login counted against its username and its client
// address from before the password is checked, so that concurrent requests
// cannot slip past the limit. Exactly one of failed, succeeded and aborted
// ends it.
type loginAttempt struct {
	s                 *Service
	usernameKey, addr string
	at                time.Time
}

// startLogin begins a login attempt for a username from addr, or returns a
// CodeRateLimited error when either is throttled. The answer is the same
// whether or not the username exists.
func (s *Service) startLogin(usernameKey, addr string) (*loginAttempt, error) {
	now := s.now()
	wait := s.userThrottle.begin(usernameKey, now)
	if wait == 0 {
		if wait = s.addrThrottle.begin(addr, now); wait > 0 {
			s.userThrottle.end(usernameKey, now, false)
		}
	}
	if wait > 0 {
		return nil, &Error{
			Code:       CodeRateLimited,
			Message:    "too many failed logins; retry later",
			RetryAfter: wait,
		}
	}
	return &loginAttempt{s: s, usernameKey: usernameKey, addr: addr, at: now}, nil
}

// failed counts a wrong password against the username and the address.
func (a *loginAttempt) failed() {
	a.s.userThrottle.end(a.usernameKey, a.at, true)
	a.s.addrThrottle.end(a.addr, a.at, true)
}

// succeeded clears the username's failures; the address loses nothing.
func (a *loginAttempt) succeeded() {
	a.s.userThrottle.reset(a.usernameKey)
	a.aborted()
}

// aborted ends the attempt without counting it: the login failed for a
// reason of the server's (overload, a fault), not the client's.
func (a *loginAttempt) aborted() {
	a.s.userThrottle.end(a.usernameKey, a.at, false)
	a.s.addrThrottle.end(a.addr, a.at, false)
}
