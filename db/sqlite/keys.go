package sqlite

import (
	"context"
	"database/sql"
	"time"

	"authql/auth"
	"authql/db"
)

const signingKeyColumns = `id, algorithm, private_key, created_at, active_at, revoked_at`

// SigningKeys returns every stored signing key, oldest first.
func (d *DB) SigningKeys(ctx context.Context) ([]*auth.SigningKey, error) {
	rows, err := d.query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []*auth.SigningKey
	for rows.Next() {
		k, err := scanSigningKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, dbError(rows.Err())
}

// scanSigningKey scans signingKeyColumns from row.
func scanSigningKey(row rowScanner) (*auth.SigningKey, error) {
	var (
		k                 auth.SigningKey
		created, activeAt int64
		revoked           *int64
	)
	if err := row.Scan(&k.ID, &k.Algorithm, &k.Private, &created, &activeAt, &revoked); err != nil {
		return nil, dbError(err)
	}
	k.CreatedAt, k.ActiveAt, k.RevokedAt = db.FromUnixNano(created), db.FromUnixNano(activeAt), db.FromNullUnixNano(revoked)
	return &k, nil
}

// AddSigningKey stores k, if it waits to become active only when no other
// key waits, if it is active at once only when no key of its algorithm is,
// and reports whether it did (see auth.KeyStore). The check and the insert
// are one statement in the write transaction, so two processes rotating at
// once, or both finding no key, store one.
func (d *DB) AddSigningKey(ctx context.Context, k *auth.SigningKey, now time.Time) (bool, error) {
	added := false
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO signing_keys (id, algorithm, private_key, created_at, active_at)
			SELECT ?1, ?2, ?3, ?4, ?5
			WHERE CASE WHEN ?5 <= ?6
				THEN NOT EXISTS (SELECT 1 FROM signing_keys WHERE revoked_at IS NULL AND active_at <= ?6 AND algorithm = ?2)
				ELSE NOT EXISTS (SELECT 1 FROM signing_keys WHERE revoked_at IS NULL AND active_at > ?6) END`,
			k.ID, k.Algorithm, k.Private, db.UnixNano(k.CreatedAt), db.UnixNano(k.ActiveAt), db.UnixNano(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		added = n == 1
		return err
	})
	return added, err
}

// RevokeSigningKey marks key id revoked at now, or returns auth.ErrNotFound
// for an unknown or already revoked key.
func (d *DB) RevokeSigningKey(ctx context.Context, id string, now time.Time) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		return updateOne(ctx, tx, `UPDATE signing_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, db.UnixNano(now), id)
	})
}
