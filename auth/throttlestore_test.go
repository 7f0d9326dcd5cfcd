package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/sqlite"
)

func TestMemoryThrottlesConform(t *testing.T) {
	authtest.ThrottleStoreConformance(t, func(*testing.T) auth.ThrottleStore { return auth.NewMemoryThrottles() })
}

// watchedThrottles is the in-memory store, counting the events taken and
// not given back per bucket name, and failing where told.
type watchedThrottles struct {
	auth.ThrottleStore
	mu   sync.Mutex
	held map[string]int
	// failTake is the bucket name whose takes fail; failEnd makes every
	// ReturnEvent, ResetBucket and AddKnownAddress fail.
	failTake string
	failEnd  bool
}

func newWatchedThrottles() *watchedThrottles {
	return &watchedThrottles{ThrottleStore: auth.NewMemoryThrottles(), held: map[string]int{}}
}

var errThrottleStore = fmt.Errorf("throttle store: %w", auth.ErrBusy)

func (w *watchedThrottles) TakeEvent(ctx context.Context, b auth.Bucket, l auth.Limit, now time.Time) (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b.Name == w.failTake {
		return 0, errThrottleStore
	}
	wait, err := w.ThrottleStore.TakeEvent(ctx, b, l, now)
	if wait == 0 && err == nil {
		w.held[b.Name]++
	}
	return wait, err
}

func (w *watchedThrottles) ReturnEvent(ctx context.Context, b auth.Bucket, l auth.Limit) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failEnd {
		return errThrottleStore
	}
	w.held[b.Name]--
	return w.ThrottleStore.ReturnEvent(ctx, b, l)
}

func (w *watchedThrottles) ResetBucket(ctx context.Context, b auth.Bucket) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failEnd {
		return errThrottleStore
	}
	w.held[b.Name] = 0 // the tests reset only buckets of one key per name
	return w.ThrottleStore.ResetBucket(ctx, b)
}

func (w *watchedThrottles) AddKnownAddress(ctx context.Context, id, addr [16]byte, now time.Time) error {
	if w.failEnd {
		return errThrottleStore
	}
	return w.ThrottleStore.AddKnownAddress(ctx, id, addr, now)
}

// heldEvents returns the events taken and not given back, by bucket name,
// without the names that hold none.
func (w *watchedThrottles) heldEvents() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	held := map[string]int{}
	for name, n := range w.held {
		if n != 0 {
			held[name] = n
		}
	}
	return held
}

func (w *watchedThrottles) set(failTake string, failEnd bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failTake, w.failEnd = failTake, failEnd
}

// Two Services sharing a ThrottleStore count against the same buckets, as
// instances sharing a database do.
func TestThrottlesAreSharedThroughConfig(t *testing.T) {
	shared := auth.NewMemoryThrottles()
	edit := func(cfg *auth.Config) {
		cfg.Throttles = shared
		cfg.LoginPairLimit = auth.Limit{N: 2, Per: time.Hour}
	}
	one, store, c := mustService(t, edit)
	cfg := testConfig(c)
	edit(&cfg)
	two, err := auth.NewService(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, one, "alice", "correct horse")
	ctx := context.Background()
	for _, svc := range []*auth.Service{one, two} {
		_, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: "wrong"})
		wantCode(t, err, auth.CodeInvalidGrant)
	}
	for _, svc := range []*auth.Service{one, two} {
		_, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: "correct horse"})
		wantCode(t, err, auth.CodeRateLimited)
	}
}

// Failures keep their events; successes, throttled attempts and faults
// give them all back, whichever bucket refused.
func TestAttemptsKeepOnlyFailures(t *testing.T) {
	w := newWatchedThrottles()
	svc, _, _ := mustService(t, func(cfg *auth.Config) {
		cfg.Throttles = w
		cfg.LoginUserLimit = auth.Limit{N: 1, Per: time.Hour}
	})
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	login := func(password, addr string) error {
		_, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: password, Origin: auth.Origin{ClientAddr: addr}})
		return err
	}
	wantHeld := func(what string, want map[string]int) {
		t.Helper()
		if got := w.heldEvents(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after %s: held %v; want %v", what, got, want)
		}
	}
	if err := login("correct horse", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	wantHeld("a success", map[string]int{})
	wantCode(t, login("wrong", "192.0.2.1"), auth.CodeInvalidGrant)
	failed := map[string]int{"login_addr": 1, "login_pair": 1, "login_user": 1}
	wantHeld("a failure", failed)
	wantCode(t, login("wrong", "198.51.100.7"), auth.CodeRateLimited) // the username's bucket is empty
	wantHeld("a throttled login", failed)

	w.set("login_pair", false)
	err := login("correct horse", "192.0.2.1")
	if !errors.Is(err, auth.ErrBusy) || auth.ErrorCode(err) != auth.CodeUnavailable {
		t.Errorf("a login whose throttle store is busy: %v; want ErrBusy, CodeUnavailable", err)
	}
	wantHeld("a fault taking an event", failed)
}

// A throttle store failing after the check is logged, at WARN and with no
// secret, and the request goes on; failing before it, the request fails.
func TestThrottleStoreFaults(t *testing.T) {
	w := newWatchedThrottles()
	logs := &authtest.Logs{}
	svc, _, _ := mustService(t, func(cfg *auth.Config) {
		cfg.Throttles = w
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	if _, err := svc.RegisterClient(ctx, auth.NewClient{ID: "api", Secret: "the api secret"}); err != nil {
		t.Fatal(err)
	}
	w.set("", true)
	g, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: "correct horse"})
	if err != nil {
		t.Fatalf("a login whose events cannot be given back: %v", err)
	}
	if _, err := svc.AuthenticateClient(ctx, "api", "the api secret", auth.Origin{ClientAddr: "192.0.2.1"}); err != nil {
		t.Fatalf("a client authentication whose address cannot be recorded: %v", err)
	}
	for _, want := range []string{
		`level=WARN msg="giving back a throttle event failed" throttle=login_addr`,
		`level=WARN msg="refilling a throttle bucket failed" throttle=login_pair`,
		`level=WARN msg="recording a client's known address failed" throttle=client_auth`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"correct horse", "the api secret", "alice"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log shows %q:\n%s", secret, logs)
		}
	}

	w.set("refresh", false)
	_, err = svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
	if auth.ErrorCode(err) != auth.CodeUnavailable {
		t.Errorf("a refresh whose throttle store is busy: %v; want CodeUnavailable", err)
	}
	w.set("", false)
	if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken}); err != nil {
		t.Errorf("the token after the refused refresh: %v", err)
	}
}

// racedRotation is the real database on which another request rotates
// every refresh token just before this one does.
type racedRotation struct{ *sqlite.DB }

func (r racedRotation) RotateRefreshToken(ctx context.Context, parentHash, childHash []byte, now, expiresAt time.Time) (bool, error) {
	if _, err := r.DB.RotateRefreshToken(ctx, parentHash, childHash, now, expiresAt); err != nil {
		return false, err
	}
	return false, nil
}

// A refresh that loses the rotation to a concurrent one gives its event
// back; a rotation keeps it.
func TestRefreshLosingTheRotationCostsNothing(t *testing.T) {
	w := newWatchedThrottles()
	svc, store, c := mustService(t, func(cfg *auth.Config) { cfg.Throttles = w })
	mustCreateUser(t, svc, "alice", "correct horse")
	g := mustLogin(t, svc, "alice", "correct horse")
	cfg := testConfig(c)
	cfg.Throttles = w
	raced, err := auth.NewService(racedRotation{store}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := raced.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken}); err != nil {
		t.Fatalf("the replay of a token rotated a moment ago: %v", err)
	}
	if held := w.heldEvents(); held["refresh"] != 0 {
		t.Errorf("a lost rotation held %d refresh events; want 0", held["refresh"])
	}
	g = mustLogin(t, svc, "alice", "correct horse")
	if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if held := w.heldEvents(); held["refresh"] != 1 {
		t.Errorf("a rotation held %d refresh events; want 1", held["refresh"])
	}
}
