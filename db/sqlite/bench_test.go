package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"authql/auth"
)

// BenchmarkSessionWithUser is the query every authenticated request runs.
func BenchmarkSessionWithUser(b *testing.B) {
	ctx := context.Background()
	store := mustOpen(b, filepath.Join(b.TempDir(), "authql.db"))
	u := newUser("alice")
	if err := store.CreateUser(ctx, u, []byte("h")); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := store.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := store.SessionWithUser(ctx, s.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
