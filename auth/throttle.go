package auth

import (
	"crypto/sha256"
	"encoding/binary"
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

// A throttle's buckets are bounded in bytes, not only in number: keys are
// fixed-size hashes, whatever the length of the username or address they
// stand for, and each bucket costs about bucketBytes (the map entry, the
// bucket and its rate.Limiter). Past maxThrottleBytes, buckets that have
// refilled are dropped, and if none has, arbitrary idle ones: forgetting some
// failures beats running out of memory.
const (
	bucketBytes      = 192
	maxThrottleBytes = 4 << 20
	maxThrottleKeys  = maxThrottleBytes / bucketBytes
)

// throttleKey is the SHA-256 of what a bucket counts, truncated to 128
// bits: the same size for a 3-letter username and for a 100 KB one.
type throttleKey [16]byte

// keyOf returns the key of parts, which are joined unambiguously.
func keyOf(parts ...string) throttleKey {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var k throttleKey
	copy(k[:], h.Sum(nil))
	return k
}

// throttle counts failed attempts per key in token buckets
// (golang.org/x/time/rate), together with the attempts still in flight, so
// that concurrent attempts cannot together exceed what the bucket holds.
type throttle struct {
	limit   Limit
	mu      sync.Mutex
	buckets map[throttleKey]*bucket
}

type bucket struct {
	failures *rate.Limiter
	inFlight int
}

func newThrottle(l Limit) *throttle {
	return &throttle{limit: l, buckets: map[throttleKey]*bucket{}}
}

func (t *throttle) newLimiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(t.limit.N)/t.limit.Per.Seconds()), t.limit.N)
}

// begin starts an attempt for key at now, or, when the failures left in the
// bucket are all spoken for, returns how long until one is free.
func (t *throttle) begin(key throttleKey, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(key, now)
	if wait := b.wait(now); wait > 0 {
		return wait
	}
	b.inFlight++
	return 0
}

// bucket returns key's bucket, made (within the bound) if it has none.
// t.mu is held.
func (t *throttle) bucket(key throttleKey, now time.Time) *bucket {
	b, ok := t.buckets[key]
	if !ok {
		if len(t.buckets) >= maxThrottleKeys {
			t.sweep(now)
		}
		b = &bucket{failures: t.newLimiter()}
		t.buckets[key] = b
	}
	return b
}

// wait is how long until one more attempt fits beside those in flight.
func (b *bucket) wait(now time.Time) time.Duration {
	if deficit := float64(b.inFlight+1) - b.failures.TokensAt(now); deficit > 0 {
		return time.Duration(deficit / float64(b.failures.Limit()) * float64(time.Second))
	}
	return 0
}

// end ends an attempt for key begun earlier; a failed one uses up one event
// of the bucket, which begin kept free for it.
func (t *throttle) end(key throttleKey, now time.Time, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.buckets[key]; ok {
		b.inFlight--
		if failed {
			b.failures.AllowN(now, 1)
		}
	}
}

// wait returns how long until key's bucket has an event free, or 0 when it
// has one now (it holds no place: see spend).
func (t *throttle) wait(key throttleKey, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.buckets[key]; ok {
		return b.wait(now)
	}
	return 0
}

// spend uses up one event of key's bucket.
func (t *throttle) spend(key throttleKey, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bucket(key, now).failures.AllowN(now, 1)
}

// reset refills key's bucket, as after a successful login.
func (t *throttle) reset(key throttleKey) {
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

// heldBucket is a bucket in which an attempt holds a place.
type heldBucket struct {
	t   *throttle
	key throttleKey
}

// attempt is one guess (a login, a client secret, a signup) counted from
// before it is checked against every bucket it belongs to, so that
// concurrent requests cannot slip past a limit. Exactly one of failed,
// succeeded and aborted ends it.
type attempt struct {
	held []heldBucket
	at   time.Time // when it began
	// now is the clock: a failure is counted when the attempt ends, so
	// that attempts ending out of order never move a bucket's clock back.
	now func() time.Time
}

// newAttempt begins an attempt at now().
func newAttempt(now func() time.Time) *attempt { return &attempt{at: now(), now: now} }

// take holds a place for a in bucket key of t, or returns how long until
// one is free; then a holds nothing any more.
func (a *attempt) take(t *throttle, key throttleKey) time.Duration {
	if wait := t.begin(key, a.at); wait > 0 {
		a.aborted()
		return wait
	}
	a.held = append(a.held, heldBucket{t, key})
	return 0
}

// failed counts the attempt against every bucket it holds a place in.
func (a *attempt) failed() { a.end(true) }

// aborted ends the attempt without counting it: it failed for a reason of
// the server's (overload, a fault), not the client's, or it was throttled.
func (a *attempt) aborted() { a.end(false) }

// succeeded ends the attempt without counting it, and refills reset.
func (a *attempt) succeeded(reset ...heldBucket) {
	for _, b := range reset {
		b.t.reset(b.key)
	}
	a.end(false)
}

func (a *attempt) end(failed bool) {
	at := a.at
	if now := a.now(); failed && now.After(at) {
		at = now
	}
	for _, b := range a.held {
		b.t.end(b.key, at, failed)
	}
	a.held = nil
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

// knownSet remembers, per client id, the addresses from which it
// authenticated and when. Only successful authentications add to it, so
// only holders of a secret can; each id keeps at most maxKnownPerID
// addresses, forgetting its own oldest first, so that one client, however
// many addresses it authenticates from, cannot push out another's.
type knownSet struct {
	mu   sync.Mutex
	seen map[throttleKey]map[throttleKey]time.Time
}

// maxKnownPerID bounds the addresses remembered for one client id.
const maxKnownPerID = 1024

func newKnownSet() *knownSet { return &knownSet{seen: map[throttleKey]map[throttleKey]time.Time{}} }

// add records that id was seen from addr at now.
func (k *knownSet) add(id, addr string, now time.Time) {
	idKey, addrKey := keyOf(id), keyOf(addr)
	k.mu.Lock()
	defer k.mu.Unlock()
	addrs := k.seen[idKey]
	if addrs == nil {
		addrs = map[throttleKey]time.Time{}
		k.seen[idKey] = addrs
	}
	if _, ok := addrs[addrKey]; !ok && len(addrs) >= maxKnownPerID {
		var oldest throttleKey
		var at time.Time
		for a, t := range addrs {
			if at.IsZero() || t.Before(at) {
				oldest, at = a, t
			}
		}
		delete(addrs, oldest)
	}
	addrs[addrKey] = now
}

// has reports whether id was seen from addr at or after since.
func (k *knownSet) has(id, addr string, since time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.seen[keyOf(id)][keyOf(addr)]
	return ok && !t.Before(since)
}
