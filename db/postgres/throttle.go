package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"authql/auth"
	"authql/db"
)

// The brute-force buckets live in throttle_buckets, so that every instance
// counts against the same ones. A bucket is a GCRA token bucket, one
// bigint: its theoretical arrival time (tat). Taking an event moves tat to
// max(tat, now) + T, where T = Per/N, if that stays within Per of now; the
// bucket is full when tat <= now. An attempt takes its event before it is
// checked and gives it back unless it failed, so an instance that crashes
// in between loses that event for T at most, never more than one window.

// TakeEvent takes one event from b at now, in one upsert, or returns how
// long until b has one.
func (d *DB) TakeEvent(ctx context.Context, b auth.Bucket, l auth.Limit, now time.Time) (time.Duration, error) {
	interval, per, at := int64(l.Per)/int64(l.N), int64(l.Per), db.UnixNano(now)
	var wait time.Duration
	err := d.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		wait = 0
		var tat int64
		err := c.QueryRow(ctx, `
			INSERT INTO throttle_buckets AS t (bucket, key, tat) VALUES ($1, $2, $3::bigint + $4::bigint)
			ON CONFLICT (bucket, key) DO UPDATE SET tat = greatest(t.tat, $3) + $4
			WHERE greatest(t.tat, $3) + $4 - $3 <= $5::bigint
			RETURNING tat`, b.Name, b.Key[:], at, interval, per).Scan(&tat)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Empty: say how long until an event comes back, from the row as
		// it now stands (at least a nanosecond: it was empty a moment ago).
		if err := c.QueryRow(ctx,
			`SELECT tat FROM throttle_buckets WHERE bucket = $1 AND key = $2`, b.Name, b.Key[:]).Scan(&tat); err != nil {
			return err
		}
		wait = time.Duration(max(max(tat, at)+interval-at-per, 1))
		return nil
	})
	return wait, err
}

// ReturnEvent gives back one event taken from b.
func (d *DB) ReturnEvent(ctx context.Context, b auth.Bucket, l auth.Limit) error {
	_, err := d.exec(ctx, `UPDATE throttle_buckets SET tat = tat - $3 WHERE bucket = $1 AND key = $2`,
		b.Name, b.Key[:], int64(l.Per)/int64(l.N))
	return err
}

// ResetBucket refills b.
func (d *DB) ResetBucket(ctx context.Context, b auth.Bucket) error {
	_, err := d.exec(ctx, `DELETE FROM throttle_buckets WHERE bucket = $1 AND key = $2`, b.Name, b.Key[:])
	return err
}

// AddKnownAddress records that the client whose id hashes to id
// authenticated from the address that hashes to addr, at now.
func (d *DB) AddKnownAddress(ctx context.Context, id, addr [16]byte, now time.Time) error {
	_, err := d.exec(ctx, `
		INSERT INTO known_client_addresses AS k (client_key, addr_key, last_success_at) VALUES ($1, $2, $3)
		ON CONFLICT (client_key, addr_key) DO UPDATE SET last_success_at = greatest(k.last_success_at, excluded.last_success_at)`,
		id[:], addr[:], db.UnixNano(now))
	return err
}

// KnownAddress reports whether that client authenticated from addr at or
// after since.
func (d *DB) KnownAddress(ctx context.Context, id, addr [16]byte, since time.Time) (bool, error) {
	var known bool
	err := d.queryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM known_client_addresses
			WHERE client_key = $1 AND addr_key = $2 AND last_success_at >= $3)`,
		[]any{id[:], addr[:], db.UnixNano(since)}, &known)
	return known, err
}

// MaxBucketsPerName bounds the buckets of each kind (each Bucket.Name) that
// PurgeThrottles leaves: about 10 MiB of rows and index per kind. Anonymous
// requests add rows (a bucket per username or address tried); the purge,
// every minute, keeps the table to this and one minute's worth.
const MaxBucketsPerName = 65536

// PurgeThrottles deletes the buckets that are full at now, which say no
// more than a missing row, and then, of each kind of bucket with more than
// MaxBucketsPerName left, those nearest to full, as the in-memory store
// does: a flood of single guesses cannot push out a targeted account's
// empty bucket. One instance purges at a time; the others skip.
func (d *DB) PurgeThrottles(ctx context.Context, now time.Time) error {
	return d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('authql.PurgeThrottles'))`).Scan(&mine); err != nil || !mine {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM throttle_buckets WHERE tat <= $1`, db.UnixNano(now)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			DELETE FROM throttle_buckets t USING (
				SELECT bucket, key FROM (
					SELECT bucket, key, row_number() OVER (PARTITION BY bucket ORDER BY tat DESC) AS n
					FROM throttle_buckets) ranked
				WHERE n > $1) excess
			WHERE t.bucket = excess.bucket AND t.key = excess.key`, MaxBucketsPerName)
		return err
	})
}
