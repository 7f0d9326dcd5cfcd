package sqlite

import (
	"context"
	"database/sql"

	"authql/auth"
	"authql/db"
)

// Dump reads every row of the database in one read transaction: a
// consistent snapshot, even while the server goes on writing.
func (d *DB) Dump(ctx context.Context) (*db.Dump, error) {
	tx, err := d.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbError(err)
	}
	defer tx.Rollback()
	var out db.Dump
	each := func(query string, scan func(rows *sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	err = each(`SELECT `+db.UserColumns+`, u.password_hash, u.credential_version FROM users u ORDER BY u.seq`,
		func(rows *sql.Rows) error {
			var c auth.Credentials
			u, err := scanUser(rows, &c.Hash, &c.Version)
			if err == nil {
				out.Users = append(out.Users, db.DumpUser{User: *u, Credentials: c})
			}
			return err
		})
	if err == nil {
		err = each(`SELECT `+db.SessionColumns+` FROM sessions s ORDER BY s.created_at, s.id`, func(rows *sql.Rows) error {
			s, err := scanSession(rows)
			out.Sessions = append(out.Sessions, s)
			return err
		})
	}
	if err == nil {
		err = each(`SELECT hash, session_id, created_at, rotated_at FROM refresh_tokens`, func(rows *sql.Rows) error {
			var (
				t       db.DumpRefreshToken
				created int64
				rotated *int64
			)
			err := rows.Scan(&t.Hash, &t.SessionID, &created, &rotated)
			t.CreatedAt, t.RotatedAt = db.FromUnixNano(created), db.FromNullUnixNano(rotated)
			out.RefreshTokens = append(out.RefreshTokens, t)
			return err
		})
	}
	if err == nil {
		err = each(`SELECT `+db.ClientColumns+` FROM clients ORDER BY id`, func(rows *sql.Rows) error {
			c, hash, err := scanClient(rows)
			if err == nil {
				out.Clients = append(out.Clients, db.DumpClient{Client: *c, SecretHash: hash})
			}
			return err
		})
	}
	if err == nil {
		err = each(`SELECT user_id, addr, last_success_at FROM login_addresses`, func(rows *sql.Rows) error {
			var (
				a  db.DumpLoginAddress
				at int64
			)
			err := rows.Scan(&a.UserID, &a.Addr, &at)
			a.LastSuccessAt = db.FromUnixNano(at)
			out.LoginAddresses = append(out.LoginAddresses, a)
			return err
		})
	}
	if err == nil {
		err = each(`SELECT key, value FROM settings ORDER BY key`, func(rows *sql.Rows) error {
			var s db.DumpSetting
			err := rows.Scan(&s.Key, &s.Value)
			out.Settings = append(out.Settings, s)
			return err
		})
	}
	if err == nil {
		err = each(`SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, id`, func(rows *sql.Rows) error {
			k, err := scanSigningKey(rows)
			out.SigningKeys = append(out.SigningKeys, k)
			return err
		})
	}
	if err != nil {
		return nil, dbError(err)
	}
	return &out, nil
}
