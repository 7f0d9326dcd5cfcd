package db

import (
	"context"
	"database/sql"
	"time"

	"authql/auth"
)

// SigningKeys returns every stored signing key, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]*auth.SigningKey, error) {
	rows, err := db.query(ctx,
		`SELECT id, algorithm, private_key, created_at, active_at, revoked_at FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []*auth.SigningKey
	for rows.Next() {
		var (
			k                 auth.SigningKey
			created, activeAt int64
			revoked           sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Private, &created, &activeAt, &revoked); err != nil {
			return nil, dbError(err)
		}
		k.CreatedAt, k.ActiveAt, k.RevokedAt = fromUnixNano(created), fromUnixNano(activeAt), fromNullUnixNano(revoked)
		keys = append(keys, &k)
	}
	return keys, dbError(rows.Err())
}

// AddSigningKey stores k unless a key that is not revoked becomes active
// after now, and reports whether it did. The check and the insert are one
// statement in the write transaction, so two processes adding a key at once
// leave at most one waiting to become active.
func (db *DB) AddSigningKey(ctx context.Context, k *auth.SigningKey, now time.Time) (bool, error) {
	added := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO signing_keys (id, algorithm, private_key, created_at, active_at)
			SELECT ?, ?, ?, ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE revoked_at IS NULL AND active_at > ?)`,
			k.ID, k.Algorithm, k.Private, unixNano(k.CreatedAt), unixNano(k.ActiveAt), unixNano(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		added = n == 1
		return err
	})
	return added, err
}
