package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"authql/auth"
	"authql/db"
)

// ErrNotEmpty is returned by Load when the database already holds users,
// clients, sessions, keys or settings.
var ErrNotEmpty = errors.New("the database is not empty")

// Load writes every row of dump into the database, which must be empty, in one
// transaction: either all of the installation arrives or none of it.
// Users keep their creation order, numbered from 1 (user list cursors from
// before the copy do not carry over), and the sequence continues after the
// last.
func (d *DB) Load(ctx context.Context, dump *db.Dump) error {
	return d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// Nothing may be added while the copy checks and fills the tables.
		if _, err := tx.Exec(ctx, `LOCK TABLE users, sessions, refresh_tokens, clients, login_addresses,
			signing_keys, settings IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var rows int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM clients)
			+ (SELECT count(*) FROM sessions) + (SELECT count(*) FROM signing_keys) + (SELECT count(*) FROM settings)`).
			Scan(&rows); err != nil {
			return err
		}
		if rows > 0 {
			return fmt.Errorf("%w: it holds %d rows of an authql installation; copy only into an empty one", ErrNotEmpty, rows)
		}
		for i, u := range dump.Users {
			if _, err := tx.Exec(ctx, `
				INSERT INTO users (seq, id, username, username_key, email, full_name, password_hash,
					credential_version, disabled, scopes, created_at)
				OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				i+1, u.ID, u.Username, auth.UsernameKey(u.Username), u.Email, u.FullName, u.Credentials.Hash,
				u.Credentials.Version, u.Disabled, auth.FormatScope(u.Scopes), db.UnixNano(u.CreatedAt)); err != nil {
				return fmt.Errorf("user %s: %w", u.ID, err)
			}
		}
		if len(dump.Users) > 0 {
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('users', 'seq'), $1)`, len(dump.Users)); err != nil {
				return err
			}
		}
		batch := &pgx.Batch{}
		for _, s := range dump.Sessions {
			batch.Queue(`INSERT INTO sessions (id, user_id, client_id, user_agent, scopes, created_at, last_used_at, expires_at, revoked_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				s.ID, s.UserID, s.ClientID, s.UserAgent, auth.FormatScope(s.Scopes),
				db.UnixNano(s.CreatedAt), db.UnixNano(s.LastUsedAt), db.UnixNano(s.ExpiresAt), db.NullUnixNano(s.RevokedAt))
		}
		for _, t := range dump.RefreshTokens {
			batch.Queue(`INSERT INTO refresh_tokens (hash, session_id, created_at, rotated_at) VALUES ($1, $2, $3, $4)`,
				t.Hash, t.SessionID, db.UnixNano(t.CreatedAt), db.NullUnixNano(t.RotatedAt))
		}
		for _, c := range dump.Clients {
			batch.Queue(`INSERT INTO clients (`+db.ClientColumns+`) VALUES ($1, $2, $3, $4, $5)`,
				c.ID, c.SecretHash, strings.Join(c.GrantTypes, " "), auth.FormatScope(c.Scopes), db.UnixNano(c.CreatedAt))
		}
		for _, a := range dump.LoginAddresses {
			batch.Queue(`INSERT INTO login_addresses (user_id, addr, last_success_at) VALUES ($1, $2, $3)`,
				a.UserID, a.Addr, db.UnixNano(a.LastSuccessAt))
		}
		for _, k := range dump.SigningKeys {
			batch.Queue(`INSERT INTO signing_keys (id, algorithm, private_key, created_at, active_at, revoked_at)
				VALUES ($1, $2, $3, $4, $5, $6)`,
				k.ID, k.Algorithm, k.Private, db.UnixNano(k.CreatedAt), db.UnixNano(k.ActiveAt), db.NullUnixNano(k.RevokedAt))
		}
		for _, s := range dump.Settings {
			batch.Queue(`INSERT INTO settings (key, value) VALUES ($1, $2)`, s.Key, s.Value)
		}
		return tx.SendBatch(ctx, batch).Close()
	})
}
