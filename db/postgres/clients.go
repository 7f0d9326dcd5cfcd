package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"authql/auth"
	"authql/db"
)

// scanClient scans db.ClientColumns from row.
func scanClient(row pgx.Row) (*auth.Client, []byte, error) {
	var r db.ClientRow
	if err := row.Scan(r.Dest()...); err != nil {
		return nil, nil, dbError(err)
	}
	c, hash := r.Client()
	return c, hash, nil
}

// CreateClient inserts c with secretHash (nil for a public client), or
// returns auth.ErrClientExists.
func (d *DB) CreateClient(ctx context.Context, c *auth.Client, secretHash []byte) error {
	_, err := d.exec(ctx, `INSERT INTO clients (`+db.ClientColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		c.ID, secretHash, strings.Join(c.GrantTypes, " "), auth.FormatScope(c.Scopes), db.UnixNano(c.CreatedAt))
	if errors.Is(err, errUnique) {
		return auth.ErrClientExists
	}
	return err
}

// ClientByID returns client id and its secret hash, or auth.ErrNotFound.
func (d *DB) ClientByID(ctx context.Context, id string) (*auth.Client, []byte, error) {
	var (
		c    *auth.Client
		hash []byte
	)
	err := d.read(ctx, func(ctx context.Context, conn *pgxpool.Conn) (err error) {
		c, hash, err = scanClient(conn.QueryRow(ctx, `SELECT `+db.ClientColumns+` FROM clients WHERE id = $1`, id))
		return err
	})
	return c, hash, err
}

// Clients returns every client by id.
func (d *DB) Clients(ctx context.Context) ([]*auth.Client, error) {
	var clients []*auth.Client
	err := d.read(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, `SELECT `+db.ClientColumns+` FROM clients ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, _, err := scanClient(rows)
			if err != nil {
				return err
			}
			clients = append(clients, c)
		}
		return rows.Err()
	})
	return clients, err
}

// DeleteClient deletes client id and revokes its live sessions at now, or
// returns auth.ErrNotFound.
func (d *DB) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := updateOne(ctx, tx, `DELETE FROM clients WHERE id = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			`UPDATE sessions SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL`, db.UnixNano(now), id)
		return err
	})
}

// Scopes returns the distinct scopes granted to users or allowed to
// clients, sorted.
func (d *DB) Scopes(ctx context.Context) ([]string, error) {
	var all []string
	err := d.read(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx,
			`SELECT scopes FROM users WHERE scopes <> '' UNION SELECT scopes FROM clients WHERE scopes <> ''`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			all = append(all, strings.Fields(s)...)
		}
		return rows.Err()
	})
	slices.Sort(all)
	return slices.Compact(all), err
}
