package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"authql/auth"
)

// perRequestReads opens a store, runs the reads that run on every
// authenticated request, refresh and login, and returns the store with
// their queries (from its statement cache).
func perRequestReads(t *testing.T) (store *DB, path string, queries []string) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "authql.db")
	store, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Now()
	u := &auth.User{ID: auth.NewID(), Username: "alice", CreatedAt: now}
	if err := store.CreateUser(ctx, u, []byte("h")); err != nil {
		t.Fatal(err)
	}
	s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	refresh := auth.HashToken(s.ID)
	if err := store.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: refresh}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.SessionWithUser(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RefreshToken(ctx, refresh); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.UserByUsername(ctx, auth.UsernameKey("alice")); err != nil {
		t.Fatal(err)
	}
	store.stmts.Range(func(key, _ any) bool {
		queries = append(queries, key.(string))
		return true
	})
	if len(queries) != 3 {
		t.Fatalf("%d queries in the statement cache; want the 3 reads run", len(queries))
	}
	return store, path, queries
}

// The per-request reads find their rows through an index, never by
// scanning a table: on a large user base a scan would cost every request.
func TestPerRequestReadsUseIndexes(t *testing.T) {
	store, _, queries := perRequestReads(t)
	for _, query := range queries {
		rows, err := store.read.Query("EXPLAIN QUERY PLAN "+query, make([]any, strings.Count(query, "?"))...)
		if err != nil {
			t.Fatalf("explain %s: %v", query, err)
		}
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
		rows.Close()
	}
}

// SQLite calls the authorizer while it compiles a statement, so a prepared
// statement that runs without calling it was not re-prepared. The
// per-request reads must not be re-prepared on every run (see
// SessionWithUser).
func TestPerRequestReadsAreNotReprepared(t *testing.T) {
	_, path, queries := perRequestReads(t)
	var compiles atomic.Int64
	registerCountingDriver.Do(func() {
		sql.Register("sqlite3-counting-compiles", &sqlite3.SQLiteDriver{
			ConnectHook: func(c *sqlite3.SQLiteConn) error {
				c.RegisterAuthorizer(func(int, string, string, string) int {
					countingCompiles.Load().Add(1)
					return sqlite3.SQLITE_OK
				})
				return nil
			},
		})
	})
	countingCompiles.Store(&compiles)
	conn, err := sql.Open("sqlite3-counting-compiles", dsn(path, time.Second, url.Values{"_query_only": {"true"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	for _, query := range queries {
		stmt, err := conn.Prepare(query)
		if err != nil {
			t.Fatal(err)
		}
		compiles.Store(0)
		for _, arg := range []string{"a", "b", "c"} {
			rows, err := stmt.Query(arg)
			if err != nil {
				t.Fatal(err)
			}
			rows.Close()
		}
		stmt.Close()
		if n := compiles.Load(); n != 0 {
			t.Errorf("the authorizer ran %d times in 3 runs of a prepared statement: SQLite re-prepares\n%s", n, query)
		}
	}
}

var (
	registerCountingDriver sync.Once
	countingCompiles       atomic.Pointer[atomic.Int64]
)
