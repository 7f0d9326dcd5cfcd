package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"authql/auth"
	"authql/db"
)

func scanClient(row interface{ Scan(...any) error }) (*auth.Client, []byte, error) {
	var (
		c              auth.Client
		hash           []byte
		grants, scopes string
		created        int64
	)
	if err := row.Scan(&c.ID, &hash, &grants, &scopes, &created); err != nil {
		return nil, nil, dbError(err)
	}
	c.Confidential, c.Registered = hash != nil, true
	c.GrantTypes, c.Scopes, c.CreatedAt = db.SplitList(grants), db.SplitList(scopes), db.FromUnixNano(created)
	return &c, hash, nil
}

// CreateClient inserts c with secretHash (nil for a public client), or
// returns auth.ErrClientExists.
func (d *DB) CreateClient(ctx context.Context, c *auth.Client, secretHash []byte) error {
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO clients (`+db.ClientColumns+`) VALUES (?, ?, ?, ?, ?)`,
			c.ID, secretHash, strings.Join(c.GrantTypes, " "), auth.FormatScope(c.Scopes), db.UnixNano(c.CreatedAt))
		return err
	})
	if errors.Is(err, errUnique) {
		return auth.ErrClientExists
	}
	return err
}

// ClientByID returns client id and its secret hash, or auth.ErrNotFound.
func (d *DB) ClientByID(ctx context.Context, id string) (*auth.Client, []byte, error) {
	return scanClient(d.queryRow(ctx, `SELECT `+db.ClientColumns+` FROM clients WHERE id = ?`, id))
}

// Clients returns every client by id.
func (d *DB) Clients(ctx context.Context) ([]*auth.Client, error) {
	rows, err := d.query(ctx, `SELECT `+db.ClientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var clients []*auth.Client
	for rows.Next() {
		c, _, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	return clients, dbError(rows.Err())
}

// DeleteClient deletes client id and revokes its live sessions at now, or
// returns auth.ErrNotFound.
func (d *DB) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		if err := updateOne(ctx, tx, `DELETE FROM clients WHERE id = ?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`UPDATE sessions SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL`, db.UnixNano(now), id)
		return err
	})
}

// Scopes returns the distinct scopes granted to users or allowed to
// clients, sorted.
func (d *DB) Scopes(ctx context.Context) ([]string, error) {
	rows, err := d.query(ctx,
		`SELECT scopes FROM users WHERE scopes <> '' UNION SELECT scopes FROM clients WHERE scopes <> ''`)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var all []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, dbError(err)
		}
		all = append(all, strings.Fields(s)...)
	}
	slices.Sort(all)
	return slices.Compact(all), dbError(rows.Err())
}
