package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"authql/auth"
	"authql/db/pgtest"
)

// TestDeadlockVictimRunsAgain: two transactions lock two rows in opposite
// orders; PostgreSQL aborts one as a deadlock victim (40P01), and inTx
// runs it again, so both commit.
func TestDeadlockVictimRunsAgain(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, key := range []string{"a", "b"} {
		if err := d.SetSetting(ctx, key, []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	var (
		locked sync.WaitGroup // both hold their first row
		wg     sync.WaitGroup
		mu     sync.Mutex
		runs   = map[string]int{}
	)
	locked.Add(2)
	for _, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		wg.Go(func() {
			first := true
			err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
				mu.Lock()
				runs[order[0]]++
				mu.Unlock()
				for i, key := range order {
					if _, err := tx.Exec(ctx, `UPDATE settings SET value = $1 WHERE key = $2`, []byte(order[0]), key); err != nil {
						return err
					}
					if i == 0 && first {
						first = false
						locked.Done()
						locked.Wait()
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("transaction %v: %v", order, err)
			}
		})
	}
	wg.Wait()
	if runs["a"]+runs["b"] != 3 {
		t.Errorf("runs %v; want one transaction run twice (the deadlock victim)", runs)
	}
}

// TestRetriesAreBounded: a transaction that PostgreSQL keeps aborting runs
// maxTxAttempts times, then the caller gets auth.ErrBusy (503).
func TestRetriesAreBounded(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runs := 0
	err = d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		runs++
		// A serialization failure, as PostgreSQL raises it.
		_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$`)
		return err
	})
	if !errors.Is(err, auth.ErrBusy) || runs != maxTxAttempts {
		t.Errorf("after %d runs: %v; want ErrBusy after %d", runs, err, maxTxAttempts)
	}
}

// TestPurgeThrottlesKeepsOnlyEmptyingBuckets: the hourly purge deletes the
// buckets that are full again, which say no more than a missing row, and
// keeps those still counting, so the table holds about one window of
// attempts however many names and addresses were tried.
func TestPurgeThrottlesKeepsOnlyEmptyingBuckets(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t0 := time.Unix(1_800_000_000, 0)
	l := auth.Limit{N: 10, Per: 10 * time.Minute} // one event back a minute
	for i := range 100 {
		b := auth.Bucket{Name: "login_addr", Key: [16]byte{byte(i)}}
		if wait, err := d.TakeEvent(ctx, b, l, t0.Add(time.Duration(i)*time.Second)); wait != 0 || err != nil {
			t.Fatal(wait, err)
		}
	}
	rows := func() (n int) {
		t.Helper()
		if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM throttle_buckets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Bucket i is full again at t0 + i seconds + one minute.
	if err := d.PurgeThrottles(ctx, t0.Add(time.Minute+49*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 50 {
		t.Errorf("%d buckets after the purge; want the 50 still counting", n)
	}
}

// TestPurgeThrottlesBoundsEachKind: past MaxBucketsPerName buckets of one
// kind, the purge keeps those furthest from full (the accounts under
// attack), whatever a flood of single guesses added, and leaves the other
// kinds alone.
func TestPurgeThrottlesBoundsEachKind(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Unix(1_800_000_000, 0)
	// The flood: one step from full each; the targets: ten steps.
	if _, err := d.pool.Exec(ctx, `
		INSERT INTO throttle_buckets (bucket, key, tat)
		SELECT 'login_user', int8send(i), $1::bigint + CASE WHEN i < 10 THEN 10 ELSE 1 END * 60000000000
		FROM generate_series(0, $2::int + 99) AS i
		UNION ALL SELECT 'login_addr', int8send(0), $1::bigint + 60000000000`,
		now.UnixNano(), MaxBucketsPerName); err != nil {
		t.Fatal(err)
	}
	if err := d.PurgeThrottles(ctx, now); err != nil {
		t.Fatal(err)
	}
	var kept, targets, others int
	if err := d.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE bucket = 'login_user'),
		count(*) FILTER (WHERE bucket = 'login_user' AND tat > $1::bigint + 60000000000),
		count(*) FILTER (WHERE bucket = 'login_addr') FROM throttle_buckets`, now.UnixNano()).
		Scan(&kept, &targets, &others); err != nil {
		t.Fatal(err)
	}
	if kept != MaxBucketsPerName || targets != 10 || others != 1 {
		t.Errorf("after the purge: %d login_user buckets (%d targets), %d login_addr; want %d (10), 1",
			kept, targets, others, MaxBucketsPerName)
	}
}
