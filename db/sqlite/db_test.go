package sqlite_test

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
	"authql/db/sqlite"
)

// mustOpen opens the database at path, closing it when the test ends.
func mustOpen(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	store, err := sqlite.Open(context.Background(), path)
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
	first, err := sqlite.Open(ctx, path)
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

// Two handles on one file, as the server and the CLI have, writing from
// many goroutines at once: every write succeeds, none sees "database is
// locked".
func TestConcurrentWritersNeverSeeLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authql.db")
	handles := []*sqlite.DB{mustOpen(t, path), mustOpen(t, path)}
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
		if store, err := sqlite.Open(context.Background(), bad); err == nil {
			store.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	// A missing directory is said as such, not as "no such file".
	missingDir := filepath.Join(t.TempDir(), "missing", "dir")
	if _, err := sqlite.Open(context.Background(), filepath.Join(missingDir, "x.db")); err == nil ||
		!strings.Contains(err.Error(), "the directory "+missingDir+" does not exist") {
		t.Errorf("Open in a missing directory: %v", err)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt.db")
	os.WriteFile(corrupt, []byte("this is not a SQLite database, not even close to one....................................................."), 0o600)
	if store, err := sqlite.Open(context.Background(), corrupt); err == nil {
		store.Close()
		t.Error("Open of a corrupt file succeeded")
	}
}

// Concurrent lookups each get their own session, unknown ids get
// ErrNotFound, and a closed database answers with an error.
func TestSessionWithUserConcurrent(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "authql.db"))
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
