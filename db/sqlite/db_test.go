package db_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/db"
)

// mustOpen opens the database at path, closing it when the test ends.
func mustOpen(tb testing.TB, path string) *db.DB {
	tb.Helper()
	store, err := db.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return store
}

func newUser(name string) *auth.User {
	return &auth.User{ID: auth.NewID(), Username: name, Scopes: []string{"a", "b"}, CreatedAt: time.Unix(1700000000, 0).UTC()}
}

func TestReopenKeepsDataAndSecret(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authql.db")
	first, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	u := newUser("alice")
	if err := first.CreateUser(ctx, u, []byte("hash")); err != nil {
		t.Fatal(err)
	}
	secret, err := first.Secret(ctx, "jwt_secret", auth.GenerateSecret)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := first.Secret(ctx, "jwt_secret", auth.GenerateSecret); string(again) != string(secret) {
		t.Error("second Secret call generated a new secret")
	}
	first.Close()

	second := mustOpen(t, path)
	got, cred, err := second.UserByUsername(ctx, auth.UsernameKey("ALICE"))
	if err != nil {
		t.Fatal(err)
	}
	if hash := cred.Hash; got.ID != u.ID || string(hash) != "hash" || fmt.Sprint(got.Scopes) != "[a b]" || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("after reopen: %+v %q; want %+v", got, cred.Hash, u)
	}
	if again, _ := second.Secret(ctx, "jwt_secret", auth.GenerateSecret); string(again) != string(secret) {
		t.Error("the secret changed across a restart")
	}
}

func TestUsernamesAreUniqueWithoutCase(t *testing.T) {
	ctx := context.Background()
	store := mustOpen(t, filepath.Join(t.TempDir(), "authql.db"))
	if err := store.CreateUser(ctx, newUser("Straße"), []byte("h")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"STRASSE", "straße", "Stra\u00dfe"} {
		if err := store.CreateUser(ctx, newUser(name), []byte("h")); !errors.Is(err, auth.ErrUsernameTaken) {
			t.Errorf("CreateUser(%q) = %v; want ErrUsernameTaken", name, err)
		}
	}
	if _, _, err := store.UserByUsername(ctx, auth.UsernameKey("nobody")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("unknown user: %v; want ErrNotFound", err)
	}
}

// Two handles on one file, as the server and the CLI have, writing from
// many goroutines at once: every write succeeds, none sees "database is
// locked".
func TestConcurrentWritersNeverSeeLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authql.db")
	handles := []*db.DB{mustOpen(t, path), mustOpen(t, path)}
	u := newUser("alice")
	if err := handles[0].CreateUser(ctx, u, []byte("h")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			now := time.Now()
			s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := handles[i%2].CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sessions, err := handles[1].Sessions(ctx, u.ID, time.Now())
	if err != nil || len(sessions) != 200 {
		t.Errorf("sessions = %d, %v; want 200", len(sessions), err)
	}
}

func TestOpenPaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd ?#% name")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "authql.db")
	mustOpen(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not created at %q: %v", path, err)
	}
	for _, bad := range []string{"", ":memory:", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if store, err := db.Open(context.Background(), bad); err == nil {
			store.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	// A missing directory is said as such, not as "no such file".
	missingDir := filepath.Join(t.TempDir(), "missing", "dir")
	if _, err := db.Open(context.Background(), filepath.Join(missingDir, "x.db")); err == nil ||
		!strings.Contains(err.Error(), "the directory "+missingDir+" does not exist") {
		t.Errorf("Open in a missing directory: %v", err)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt.db")
	os.WriteFile(corrupt, []byte("this is not a SQLite database, not even close to one....................................................."), 0o600)
	if store, err := db.Open(context.Background(), corrupt); err == nil {
		store.Close()
		t.Error("Open of a corrupt file succeeded")
	}
}

func TestListUsersPages(t *testing.T) {
	ctx := context.Background()
	store := mustOpen(t, filepath.Join(t.TempDir(), "authql.db"))
	for i := range 5 {
		if err := store.CreateUser(ctx, newUser(fmt.Sprintf("user%d", i)), []byte("h")); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	cursor := ""
	for {
		users, cursors, err := store.ListUsers(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) == 0 {
			break
		}
		for _, u := range users {
			names = append(names, u.Username)
		}
		cursor = cursors[len(cursors)-1]
	}
	if fmt.Sprint(names) != "[user0 user1 user2 user3 user4]" {
		t.Errorf("pages = %v", names)
	}
	for _, bad := range []string{"x", "dXNlcjp4"} {
		if _, _, err := store.ListUsers(ctx, bad, 2); !errors.Is(err, auth.ErrBadCursor) {
			t.Errorf("cursor %q: %v; want ErrBadCursor", bad, err)
		}
	}
}

// Concurrent lookups each get their own session, unknown ids get
// ErrNotFound, and a closed database answers with an error.
func TestSessionWithUserConcurrent(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "authql.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var ids []string
	for i := range 20 {
		u := newUser(fmt.Sprintf("user%d", i))
		if err := store.CreateUser(ctx, u, []byte("h")); err != nil {
			t.Fatal(err)
		}
		s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := store.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	var wg sync.WaitGroup
	for round := range 50 {
		for i, id := range ids {
			wg.Go(func() {
				if (round+i)%7 == 0 {
					if _, _, err := store.SessionWithUser(ctx, "missing-"+id); !errors.Is(err, auth.ErrNotFound) {
						t.Errorf("unknown session: %v", err)
					}
					return
				}
				s, u, err := store.SessionWithUser(ctx, id)
				if err != nil || s.ID != id || u.Username != fmt.Sprintf("user%d", i) || u.ID != s.UserID {
					t.Errorf("lookup %s: %+v %+v %v", id, s, u, err)
				}
			})
		}
	}
	wg.Wait()
	store.Close()
	if _, _, err := store.SessionWithUser(ctx, ids[0]); err == nil {
		t.Error("a lookup on a closed database succeeded")
	}
}

func TestPurgeSessions(t *testing.T) {
	ctx := context.Background()
	store := mustOpen(t, filepath.Join(t.TempDir(), "authql.db"))
	u := newUser("alice")
	if err := store.CreateUser(ctx, u, []byte("h")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	session := func(expires time.Time) *auth.Session {
		s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: t0, LastUsedAt: t0, ExpiresAt: expires}
		if err := store.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID)}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := session(t0.Add(time.Hour))
	revoked := session(t0.Add(100 * time.Hour))
	live := session(t0.Add(100 * time.Hour))
	if err := store.RevokeSession(ctx, u.ID, revoked.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := store.PurgeSessions(ctx, t0.Add(3*time.Hour), t0, t0)
	if err != nil || n != 2 {
		t.Fatalf("purged %d, %v; want 2", n, err)
	}
	for _, s := range []*auth.Session{expired, revoked} {
		if _, err := store.RefreshToken(ctx, auth.HashToken(s.ID)); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("refresh token of a purged session: %v", err)
		}
	}
	if _, _, err := store.SessionWithUser(ctx, live.ID); err != nil {
		t.Errorf("live session: %v", err)
	}
}

// TestPurgeRotatedTokens: the hashes of refresh tokens rotated before the
// cutoff go, even in a live session; newer ones and the current one stay,
// so that a replay of a recent token is still recognised as theft.
func TestPurgeRotatedTokens(t *testing.T) {
	ctx := context.Background()
	store := mustOpen(t, filepath.Join(t.TempDir(), "authql.db"))
	u := newUser("alice")
	if err := store.CreateUser(ctx, u, []byte("h")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	hash := func(i int) []byte { return auth.HashToken(fmt.Sprint("token ", i)) }
	if err := store.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: hash(0)}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		now := t0.Add(time.Duration(i+1) * time.Minute)
		if ok, err := store.RotateRefreshToken(ctx, hash(i), hash(i+1), now, now.Add(time.Hour)); err != nil || !ok {
			t.Fatalf("rotation %d: %v %v", i, ok, err)
		}
	}
	// Tokens 0..4 were rotated at minutes 1..5.
	if _, err := store.PurgeSessions(ctx, t0, t0.Add(5*time.Minute+time.Second), t0); err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		_, err := store.RefreshToken(ctx, hash(i))
		if gone := errors.Is(err, auth.ErrNotFound); gone != (i < 5) {
			t.Errorf("token %d: %v; want purged %v", i, err, i < 5)
		}
	}
}

// TestMaxPasswordCostCountsClientSecrets: client secrets are checked like
// passwords, so their cost counts toward what every check costs.
func TestMaxPasswordCostCountsClientSecrets(t *testing.T) {
	ctx := context.Background()
	store := mustOpen(t, filepath.Join(t.TempDir(), "authql.db"))
	if cost, err := store.MaxPasswordCost(ctx); err != nil || cost != 0 {
		t.Fatalf("empty database: %d %v", cost, err)
	}
	if err := store.CreateUser(ctx, newUser("alice"), []byte("$2a$05$abcdefghijklmnopqrstuu")); err != nil {
		t.Fatal(err)
	}
	client := &auth.Client{ID: "app", GrantTypes: auth.GrantTypes, CreatedAt: time.Unix(1700000000, 0)}
	if err := store.CreateClient(ctx, client, []byte("$2a$09$abcdefghijklmnopqrstuu")); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, &auth.Client{ID: "spa", GrantTypes: auth.GrantTypes}, nil); err != nil {
		t.Fatal(err)
	}
	if cost, err := store.MaxPasswordCost(ctx); err != nil || cost != 9 {
		t.Errorf("MaxPasswordCost = %d, %v; want 9, the client secret's", cost, err)
	}
}
