package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db"
)

// services returns n services, as n instances would run them, each over
// its own handle on one new database, sharing a clock; edit may change
// their configuration.
func services(t *testing.T, open Open, n int, edit ...func(*auth.Config)) ([]*auth.Service, []db.Database, *authtest.Clock) {
	t.Helper()
	first, again := open(t)
	c := authtest.NewClock(t0)
	cfg := authtest.Config(c)
	for _, e := range edit {
		e(&cfg)
	}
	var (
		svcs    []*auth.Service
		handles []db.Database
	)
	for i := range n {
		h := first
		if i > 0 {
			h = again(t)
		}
		svc, err := auth.NewService(h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		svcs, handles = append(svcs, svc), append(handles, h)
	}
	return svcs, handles, c
}

func code(err error) auth.Code {
	var e *auth.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// 100 concurrent signups of one name, in different case and compatibility
// forms, through two instances: exactly one wins, the others are told the
// name is taken, and no error is anything else.
func testConcurrentSignups(t *testing.T, open Open) {
	svcs, handles, _ := services(t, open, 2)
	forms := []string{"Straße", "STRASSE", "strasse", "StRaSsE", "ｓｔｒａｓｓｅ", "Strasse"}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		winner []string
	)
	for i := range 100 {
		wg.Go(func() {
			name := forms[i%len(forms)]
			_, err := svcs[i%2].CreateUser(ctx, auth.NewUser{Username: name, Password: "correct horse battery"})
			switch {
			case err == nil:
				mu.Lock()
				winner = append(winner, name)
				mu.Unlock()
			case code(err) != auth.CodeInvalidRequest || !strings.Contains(err.Error(), "is taken"):
				t.Errorf("signup %d (%q): %v; want taken", i, name, err)
			}
		})
	}
	wg.Wait()
	if len(winner) != 1 {
		t.Fatalf("%d signups won: %q; want exactly one", len(winner), winner)
	}
	users, _, err := handles[1].ListUsers(ctx, "", 10)
	if err != nil || len(users) != 1 || users[0].Username != winner[0] {
		t.Errorf("stored users %v %v; want only %q", users, err, winner[0])
	}
}

// 50 concurrent refreshes of one token, through two instances: one
// rotation; every request, inside the grace window, gets the same child;
// the session stays live.
func testConcurrentRefreshes(t *testing.T, open Open) {
	svcs, handles, _ := services(t, open, 2)
	authtest.MustCreateUser(t, svcs[0], "alice", "correct horse battery")
	g, err := svcs[0].Login(ctx, auth.PasswordGrant{Username: "alice", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	children := make([]string, 50)
	var wg sync.WaitGroup
	for i := range children {
		wg.Go(func() {
			child, err := svcs[i%2].Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
			if err != nil {
				t.Errorf("refresh %d: %v", i, err)
				return
			}
			children[i] = child.RefreshToken
		})
	}
	wg.Wait()
	for i, c := range children {
		if c != children[0] || c == "" {
			t.Fatalf("refresh %d got another child than refresh 0", i)
		}
	}
	if _, err := svcs[1].Refresh(ctx, auth.RefreshGrant{RefreshToken: children[0]}); err != nil {
		t.Errorf("the child does not refresh: %v", err)
	}
	rt, err := handles[0].RefreshToken(ctx, auth.HashToken(g.RefreshToken))
	if err != nil || rt.Session.RevokedAt != nil {
		t.Errorf("session after the concurrent refreshes: %+v %v; want live", rt, err)
	}
}

// pausingStore is a real database whose UserByUsername, which a login
// reads the credentials with, waits for the test after reading, as a login
// does while bcrypt checks the password.
type pausingStore struct {
	db.Database
	read    chan struct{}
	proceed chan struct{}
}

func (p *pausingStore) UserByUsername(ctx context.Context, key string) (*auth.User, auth.Credentials, error) {
	u, c, err := p.Database.UserByUsername(ctx, key)
	p.read <- struct{}{}
	<-p.proceed
	return u, c, err
}

// A login that checked the old password on one instance opens no session
// once a password change through another has committed.
func testPasswordChangeRacingLogin(t *testing.T, open Open) {
	const old, next = "correct horse battery", "battery staple horse"
	svcs, handles, c := services(t, open, 2)
	u := authtest.MustCreateUser(t, svcs[0], "alice", old)
	gated := &pausingStore{Database: handles[1], read: make(chan struct{}), proceed: make(chan struct{})}
	racing, err := auth.NewService(gated, authtest.Config(c))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := racing.Login(ctx, auth.PasswordGrant{Username: "alice", Password: old})
		done <- err
	}()
	<-gated.read
	if err := svcs[0].SetPassword(ctx, u.ID, next); err != nil {
		t.Fatal(err)
	}
	close(gated.proceed)
	if err := <-done; code(err) != auth.CodeInvalidGrant {
		t.Errorf("the login that checked the old password: %v; want invalid_grant", err)
	}
	if live, _ := handles[0].Sessions(ctx, u.ID, t0); len(live) != 0 {
		t.Errorf("%d sessions open after the change; want none", len(live))
	}
	if _, err := svcs[1].Login(ctx, auth.PasswordGrant{Username: "alice", Password: next}); err != nil {
		t.Errorf("the new password: %v", err)
	}
}

// pausingRefresh is a real database whose RefreshToken, which a refresh
// reads the token's session with, waits for the test after reading.
type pausingRefresh struct {
	db.Database
	read    chan struct{}
	proceed chan struct{}
}

func (p *pausingRefresh) RefreshToken(ctx context.Context, hash []byte) (*auth.RefreshToken, error) {
	rt, err := p.Database.RefreshToken(ctx, hash)
	p.read <- struct{}{}
	<-p.proceed
	return rt, err
}

// A refresh that read a live session on one instance rotates nothing, and
// issues no token, once a logout through another has committed.
func testLogoutRacingRefresh(t *testing.T, open Open) {
	svcs, handles, c := services(t, open, 2)
	authtest.MustCreateUser(t, svcs[0], "alice", "correct horse battery")
	g, err := svcs[0].Login(ctx, auth.PasswordGrant{Username: "alice", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	gated := &pausingRefresh{Database: handles[1], read: make(chan struct{}), proceed: make(chan struct{})}
	racing, err := auth.NewService(gated, authtest.Config(c))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := racing.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
		done <- err
	}()
	<-gated.read
	id, err := svcs[0].Authenticate(ctx, g.AccessToken, auth.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svcs[0].Logout(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	close(gated.proceed)
	if err := <-done; code(err) != auth.CodeInvalidGrant {
		t.Errorf("the refresh that read the session before the logout: %v; want invalid_grant", err)
	}
	if rt, err := handles[0].RefreshToken(ctx, auth.HashToken(g.RefreshToken)); err != nil || rt.RotatedAt != nil {
		t.Errorf("the logged-out token: %+v %v; want it never rotated", rt, err)
	}
}

// Eight rotations at once, through two instances, leave one pending key.
func testConcurrentRotations(t *testing.T, open Open) {
	svcs, _, _ := services(t, open, 2, func(cfg *auth.Config) {
		cfg.Secret, cfg.SigningAlgorithm = nil, auth.AlgES256
		cfg.KeyRotationInterval = 30 * 24 * time.Hour
	})
	for _, svc := range svcs {
		if err := svc.LoadSigningKeys(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		added int
	)
	for i := range 8 {
		wg.Go(func() {
			_, ok, err := svcs[i%2].RotateSigningKey(ctx)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				added++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	keys, err := svcs[1].SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := ""
	for _, k := range keys {
		states += string(k.State) + " "
	}
	if added != 1 || states != "active pending " {
		t.Errorf("%d rotations added a key; states %q; want one pending", added, states)
	}
}

// Instances that find no key to sign with at the same moment (at first
// start, or after the only key was revoked) make one between them, which
// all sign with.
func testConcurrentFirstKeys(t *testing.T, open Open) {
	svcs, _, _ := services(t, open, 2, func(cfg *auth.Config) {
		cfg.Secret, cfg.SigningAlgorithm = nil, auth.AlgES256
	})
	load := func() {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if err := svcs[i%2].LoadSigningKeys(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	active := func() []string {
		t.Helper()
		keys, err := svcs[1].SigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range keys {
			if k.State == "active" {
				ids = append(ids, k.ID)
			}
		}
		return ids
	}
	load()
	first := active()
	if len(first) != 1 {
		t.Fatalf("after concurrent first loads, active keys %v; want one", first)
	}
	if err := svcs[0].RevokeSigningKey(ctx, first[0]); err != nil {
		t.Fatal(err)
	}
	load()
	if again := active(); len(again) != 1 || again[0] == first[0] {
		t.Errorf("after the only key was revoked, active keys %v; want one new one", again)
	}
}

// A database that keeps throttles (for many instances) keeps them as the
// in-memory store does, and shares them between handles. With one that
// does not, the service keeps them in memory: that store is checked.
func testThrottles(t *testing.T, open Open) {
	d, again := open(t)
	store, ok := d.(auth.ThrottleStore)
	if !ok {
		authtest.ThrottleStoreConformance(t, func(t *testing.T) auth.ThrottleStore { return auth.NewMemoryThrottles() })
		return
	}
	authtest.ThrottleStoreConformance(t, func(t *testing.T) auth.ThrottleStore {
		d, _ := open(t)
		return d.(auth.ThrottleStore)
	})
	other := again(t).(auth.ThrottleStore)
	b, l := auth.Bucket{Name: "login_user", Key: [16]byte{1}}, auth.Limit{N: 3, Per: time.Minute}
	for i := range 3 {
		s := []auth.ThrottleStore{store, other}[i%2]
		if wait, err := s.TakeEvent(ctx, b, l, t0); wait != 0 || err != nil {
			t.Fatalf("take %d: %v %v", i, wait, err)
		}
	}
	if wait, err := store.TakeEvent(ctx, b, l, t0); wait != 20*time.Second || err != nil {
		t.Errorf("a fourth take across two handles: wait %v %v; want 20s", wait, err)
	}
}
