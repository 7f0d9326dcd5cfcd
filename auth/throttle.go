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

// throttle counts events per key in token buckets (golang.org/x/time/rate).
type throttle struct {
	limit   Limit
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newThrottle(l Limit) *throttle {
	return &throttle{limit: l, buckets: map[string]*rate.Limiter{}}
}

// take takes one event for key at now. When the bucket is empty it takes
// nothing and returns how long until it will not be.
func (t *throttle) take(key string, now time.Time) (*rate.Reservation, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.buckets[key]
	if !ok {
		if len(t.buckets) >= maxThrottleKeys {
			t.sweep(now)
		}
		b = rate.NewLimiter(rate.Limit(float64(t.limit.N)/t.limit.Per.Seconds()), t.limit.N)
		t.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, wait
	}
	return r, 0
}

// reset forgets key, as after a successful login.
func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.buckets, key)
}

// sweep drops full buckets, then, if still too many, arbitrary ones. t.mu is
// held.
func (t *throttle) sweep(now time.Time) {
	for k, b := range t.buckets {
		if b.TokensAt(now) >= float64(t.limit.N) {
			delete(t.buckets, k)
		}
	}
	for k := range t.buckets {
		if len(t.buckets) < maxThrottleKeys*9/10 {
			break
		}
		delete(t.buckets, k)
	}
}

// loginAttempt is one login counted against its username and its client
// address, taken before the password is checked so that concurrent
// requests cannot slip past the limit.
type loginAttempt struct {
	s           *Service
	usernameKey string
	user, addr  *rate.Reservation
	at          time.Time
}

// startLogin counts a login attempt for a username from addr, or returns a
// CodeRateLimited error when either is throttled. The answer is the same
// whether or not the username exists.
func (s *Service) startLogin(usernameKey, addr string) (*loginAttempt, error) {
	now := s.now()
	user, userWait := s.userThrottle.take(usernameKey, now)
	addrRes, addrWait := s.addrThrottle.take(addr, now)
	a := &loginAttempt{s: s, usernameKey: usernameKey, user: user, addr: addrRes, at: now}
	if wait := max(userWait, addrWait); wait > 0 {
		a.aborted() // give back what the other bucket took
		return nil, &Error{
			Code:       CodeRateLimited,
			Message:    "too many failed logins; retry later",
			RetryAfter: wait,
		}
	}
	return a, nil
}

// succeeded clears the username's failures and gives the address its
// attempt back.
func (a *loginAttempt) succeeded() {
	a.s.userThrottle.reset(a.usernameKey)
	a.addr.CancelAt(a.at)
}

// aborted gives both attempts back: the login did not run, or failed for a
// reason of the server's (overload, a fault), not the client's.
func (a *loginAttempt) aborted() {
	for _, r := range []*rate.Reservation{a.user, a.addr} {
		if r != nil {
			r.CancelAt(a.at)
		}
	}
}
