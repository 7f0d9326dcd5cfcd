package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"authql/auth"
)

// The reads that run on every authenticated request, refresh and login
// find their rows through an index, never by scanning a table: on a large
// user base a scan would cost every request.
func TestPerRequestReadsUseIndexes(t *testing.T) {
	ctx := context.Background()
	store, err := Open(ctx, filepath.Join(t.TempDir(), "authql.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	u := &auth.User{ID: auth.NewID(), Username: "alice", CreatedAt: now}
	if err := store.CreateUser(ctx, u, []byte("h")); err != nil {
		t.Fatal(err)
	}
	s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	refresh := auth.HashToken(s.ID)
	if err := store.CreateSession(ctx, s, refresh); err != nil {
		t.Fatal(err)
	}

	// Run each read once, so that its query is in the statement cache.
	if _, _, err := store.SessionWithUser(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RefreshToken(ctx, refresh); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.UserByUsername(ctx, auth.UsernameKey("alice")); err != nil {
		t.Fatal(err)
	}

	queries := 0
	store.stmts.Range(func(key, _ any) bool {
		query := key.(string)
		queries++
		args := make([]any, strings.Count(query, "?"))
		rows, err := store.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Errorf("explain %s: %v", query, err)
			return true
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(detail, "SEARCH ") {
				t.Errorf("plan step %q of\n%s", detail, query)
			}
		}
		return true
	})
	if queries != 3 {
		t.Errorf("%d queries in the statement cache; want the 3 this test ran", queries)
	}
}
