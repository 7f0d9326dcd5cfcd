package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"authql/auth"
	"authql/db"
)

// SigningKeys returns every stored signing key, oldest first.
func (d *DB) SigningKeys(ctx context.Context) ([]*auth.SigningKey, error) {
	var keys []*auth.SigningKey
	err := d.read(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx,
			`SELECT id, algorithm, private_key, created_at, active_at, revoked_at FROM signing_keys ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				k                 auth.SigningKey
				created, activeAt int64
				revoked           *int64
			)
			if err := rows.Scan(&k.ID, &k.Algorithm, &k.Private, &created, &activeAt, &revoked); err != nil {
				return err
			}
			k.CreatedAt, k.ActiveAt, k.RevokedAt = db.FromUnixNano(created), db.FromUnixNano(activeAt), db.FromNullUnixNano(revoked)
			keys = append(keys, &k)
		}
		return rows.Err()
	})
	return keys, err
}

// AddSigningKey stores k, if it waits to become active only when no other
// key waits, if it is active at once only when no key of its algorithm is,
// and reports whether it did (see auth.KeyStore). At READ
// COMMITTED two instances could both find no waiting key and both insert,
// so the transaction first takes a lock on the table that only another
// AddSigningKey waits for (SHARE ROW EXCLUSIVE conflicts with itself, not
// with reads): rotations by any number of instances queue, and each later
// one sees the key the first added.
func (d *DB) AddSigningKey(ctx context.Context, k *auth.SigningKey, now time.Time) (bool, error) {
	var n int64
	err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) (err error) {
		if _, err := tx.Exec(ctx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		n, err = txExec(ctx, tx, `
			INSERT INTO signing_keys (id, algorithm, private_key, created_at, active_at)
			SELECT $1::text, $2::text, $3::bytea, $4::bigint, $5::bigint
			WHERE CASE WHEN $5 <= $6::bigint
				THEN NOT EXISTS (SELECT 1 FROM signing_keys WHERE revoked_at IS NULL AND active_at <= $6 AND algorithm = $2)
				ELSE NOT EXISTS (SELECT 1 FROM signing_keys WHERE revoked_at IS NULL AND active_at > $6) END`,
			k.ID, k.Algorithm, k.Private, db.UnixNano(k.CreatedAt), db.UnixNano(k.ActiveAt), db.UnixNano(now))
		return err
	})
	return n == 1, err
}

// RevokeSigningKey marks key id revoked at now, or returns auth.ErrNotFound
// for an unknown or already revoked key.
func (d *DB) RevokeSigningKey(ctx context.Context, id string, now time.Time) error {
	return d.execOne(ctx, `UPDATE signing_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, db.UnixNano(now), id)
}
