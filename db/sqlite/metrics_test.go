package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
)

// writes records what a DB tells its Observer.
type writes struct {
	mu    sync.Mutex
	waits []time.Duration
	busy  int
}

func (w *writes) ObserveWriteWait(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, d)
}

func (w *writes) ObserveWriteBusy() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy++
}

func (w *writes) get() ([]time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.waits...), w.busy
}

// Every write reports its wait for the writer; one that gives up busy
// (another process holds the write lock) reports that too.
func TestWriteObserver(t *testing.T) {
	ctx := context.Background()
	seen := &writes{}
	path := filepath.Join(t.TempDir(), "authql.db")
	store, err := Open(ctx, path, Options{BusyTimeout: 50 * time.Millisecond, WriteWait: 300 * time.Millisecond, Metrics: seen})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.SetSetting(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if waits, busy := seen.get(); len(waits) != 1 || busy != 0 {
		t.Fatalf("after one write: waits %v, busy %d; want one wait", waits, busy)
	}

	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if err := store.SetSetting(ctx, "k", []byte("w")); !errors.Is(err, auth.ErrBusy) {
		t.Fatalf("write with the lock held elsewhere = %v; want auth.ErrBusy", err)
	}
	waits, busy := seen.get()
	if len(waits) != 2 || busy != 1 {
		t.Fatalf("after a busy write: waits %v, busy %d; want two waits and one busy", waits, busy)
	}
	if waits[1] < 50*time.Millisecond {
		t.Errorf("the busy write waited %v; want at least the busy timeout, 50ms", waits[1])
	}
	conn.ExecContext(ctx, "ROLLBACK")
}

// CountLiveSessions counts the sessions neither revoked nor expired at now,
// through the partial index sessions_live.
func TestCountLiveSessions(t *testing.T) {
	ctx := context.Background()
	store, err := Open(ctx, filepath.Join(t.TempDir(), "authql.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	for _, name := range []string{"alice", "bob"} {
		u := &auth.User{ID: auth.NewID(), Username: name, CreatedAt: now}
		if err := store.CreateUser(ctx, u, []byte("h")); err != nil {
			t.Fatal(err)
		}
		for _, ttl := range []time.Duration{time.Hour, 2 * time.Hour, -time.Minute} {
			s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(ttl)}
			if err := store.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID)}); err != nil {
				t.Fatal(err)
			}
			if name == "bob" && ttl == 2*time.Hour {
				if err := store.RevokeSession(ctx, u.ID, s.ID, now); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{now, 3}, // alice's two, bob's first; one expired each, bob's second revoked
		{now.Add(90 * time.Minute), 1},
		{now.Add(3 * time.Hour), 0},
	} {
		if got, err := store.CountLiveSessions(ctx, tc.at); err != nil || got != tc.want {
			t.Errorf("CountLiveSessions(now+%v) = %d, %v; want %d", tc.at.Sub(now), got, err, tc.want)
		}
	}

	rows, err := store.read.Query("EXPLAIN QUERY PLAN "+countLiveSessions, now.UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) != 1 || !strings.HasPrefix(plan[0], "SEARCH sessions USING COVERING INDEX sessions_live") {
		t.Errorf("plan = %q; want a search of the covering index sessions_live", plan)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := store.CountLiveSessions(canceled, now); err == nil {
		t.Error("CountLiveSessions with its context ended succeeded; want an error")
	}
}
