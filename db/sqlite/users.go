package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"authql/auth"
	"authql/db"
)

// scanUser scans db.UserColumns, then extra, from row.
func scanUser(row interface{ Scan(...any) error }, extra ...any) (*auth.User, error) {
	var r db.UserRow
	if err := row.Scan(append(r.Dest(), extra...)...); err != nil {
		return nil, dbError(err)
	}
	return r.User(), nil
}

// CreateUser inserts u. It returns auth.ErrUsernameTaken when the username's
// key is taken.
func (d *DB) CreateUser(ctx context.Context, u *auth.User, passwordHash []byte) error {
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO users (id, username, username_key, email, full_name, password_hash, disabled, scopes, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Username, auth.UsernameKey(u.Username), u.Email, u.FullName, passwordHash,
			u.Disabled, auth.FormatScope(u.Scopes), db.UnixNano(u.CreatedAt))
		return err
	})
	if errors.Is(err, errUnique) {
		return auth.ErrUsernameTaken
	}
	return err
}

// UserByUsername returns the user with username key key and its
// credentials, or auth.ErrNotFound.
func (d *DB) UserByUsername(ctx context.Context, key string) (*auth.User, auth.Credentials, error) {
	var c auth.Credentials
	row := d.queryRow(ctx,
		`SELECT `+db.UserColumns+`, u.password_hash, u.credential_version FROM users u WHERE u.username_key = ?`, key)
	u, err := scanUser(row, &c.Hash, &c.Version)
	return u, c, err
}

// UserByID returns the user with id and its credentials, or
// auth.ErrNotFound.
func (d *DB) UserByID(ctx context.Context, id string) (*auth.User, auth.Credentials, error) {
	var c auth.Credentials
	row := d.queryRow(ctx,
		`SELECT `+db.UserColumns+`, u.password_hash, u.credential_version FROM users u WHERE u.id = ?`, id)
	u, err := scanUser(row, &c.Hash, &c.Version)
	return u, c, err
}

// SetPasswordHash replaces the password hash of user id, moves its
// credential version on and revokes its live sessions but the kept one, if
// change (when set) still holds: see auth.UserStore.
func (d *DB) SetPasswordHash(ctx context.Context, id string, hash []byte, change *auth.PasswordChange, now time.Time) error {
	keep := ""
	return d.inTx(ctx, func(tx *sql.Tx) error {
		if change != nil {
			keep = change.KeepSession
			var exists, current bool
			err := tx.QueryRowContext(ctx, `
				SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1), EXISTS (
					SELECT 1 FROM users u JOIN sessions s ON s.user_id = u.id
					WHERE u.id = ?1 AND u.credential_version = ?2 AND u.disabled = 0
					AND s.id = ?3 AND s.revoked_at IS NULL AND s.expires_at > ?4)`,
				id, change.Version, keep, db.UnixNano(now)).Scan(&exists, &current)
			if err != nil {
				return err
			}
			if !exists {
				return auth.ErrNotFound
			}
			if !current {
				return auth.ErrCredentialsChanged
			}
		}
		if err := updateOne(ctx, tx,
			`UPDATE users SET password_hash = ?, credential_version = credential_version + 1 WHERE id = ?`, hash, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE sessions SET revoked_at = ?
			WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`,
			db.UnixNano(now), id, keep)
		return err
	})
}

// UpgradePasswordHash replaces the password hash of user id if its
// credential version is still version, and reports whether it did.
func (d *DB) UpgradePasswordHash(ctx context.Context, id string, hash []byte, version int64) (bool, error) {
	upgraded := false
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE users SET password_hash = ? WHERE id = ? AND credential_version = ?`, hash, id, version)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		upgraded = n == 1
		return err
	})
	return upgraded, err
}

// SetUserDisabled sets the disabled flag of user id; disabling revokes its
// live sessions at now and moves its credential version on. It returns the
// user or auth.ErrNotFound.
func (d *DB) SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time, check func(*auth.User) error) (*auth.User, error) {
	var u *auth.User
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkUser(ctx, tx, id, check); err != nil {
			return err
		}
		if err := updateOne(ctx, tx,
			`UPDATE users SET disabled = ?1, credential_version = credential_version + ?1 WHERE id = ?2`,
			disabled, id); err != nil {
			return err
		}
		if disabled {
			if err := revokeSessions(ctx, tx, id, now); err != nil {
				return err
			}
		}
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+db.UserColumns+` FROM users u WHERE u.id = ?`, id))
		return err
	})
	return u, err
}

// UpdateUserScopes replaces the scopes of user id by what update makes of
// them, in one write transaction, and returns the user, or
// auth.ErrNotFound.
func (d *DB) UpdateUserScopes(ctx context.Context, id string, update func(current []string) ([]string, error)) (*auth.User, error) {
	var u *auth.User
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		current, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+db.UserColumns+` FROM users u WHERE u.id = ?`, id))
		if err != nil {
			return err
		}
		scopes, err := update(current.Scopes)
		if err != nil {
			return err
		}
		if err := updateOne(ctx, tx, `UPDATE users SET scopes = ? WHERE id = ?`, auth.FormatScope(scopes), id); err != nil {
			return err
		}
		current.Scopes = append([]string{}, scopes...)
		u = current
		return nil
	})
	return u, err
}

// KnownLoginAddress reports whether the user with username key key logged
// in from addr at or after since.
func (d *DB) KnownLoginAddress(ctx context.Context, key, addr string, since time.Time) (bool, error) {
	var known bool
	err := d.queryRow(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM users u JOIN login_addresses a ON a.user_id = u.id
			WHERE u.username_key = CAST(? AS TEXT) AND a.addr = CAST(? AS TEXT) AND a.last_success_at >= ?)`,
		key, addr, db.UnixNano(since)).Scan(&known)
	return known, dbError(err)
}

// MaxPasswordCost returns the highest bcrypt cost among the stored password
// hashes and client secret hashes, or 0 without any. It reads every row:
// call it at start and now and then, not per request.
func (d *DB) MaxPasswordCost(ctx context.Context) (int, error) {
	// A bcrypt hash is $2a$NN$…: the cost is its 5th and 6th characters.
	var cost int
	err := d.queryRow(ctx, `
		SELECT coalesce(MAX(CAST(substr(CAST(h AS TEXT), 5, 2) AS INTEGER)), 0) FROM (
			SELECT password_hash AS h FROM users
			UNION ALL SELECT secret_hash FROM clients WHERE secret_hash IS NOT NULL)`).Scan(&cost)
	return cost, dbError(err)
}

// DeleteUser deletes user id with its sessions and refresh tokens, or
// returns auth.ErrNotFound.
func (d *DB) DeleteUser(ctx context.Context, id string, check func(*auth.User) error) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkUser(ctx, tx, id, check); err != nil {
			return err
		}
		return updateOne(ctx, tx, `DELETE FROM users WHERE id = ?`, id)
	})
}

// checkUser calls check, when not nil, with user id as it stands in tx (the
// write transaction: nothing else commits until tx ends).
func checkUser(ctx context.Context, tx *sql.Tx, id string, check func(*auth.User) error) error {
	if check == nil {
		return nil
	}
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+db.UserColumns+` FROM users u WHERE u.id = ?`, id))
	if err != nil {
		return err
	}
	return check(u)
}

// ListUsers returns up to limit users after cursor in creation order, and
// the cursor of each. A cursor is the user's row number, opaque to clients.
func (d *DB) ListUsers(ctx context.Context, cursor string, limit int) ([]*auth.User, []string, error) {
	var after int64
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !strings.HasPrefix(string(raw), "user:") {
			return nil, nil, auth.ErrBadCursor
		}
		if after, err = strconv.ParseInt(strings.TrimPrefix(string(raw), "user:"), 10, 64); err != nil {
			return nil, nil, auth.ErrBadCursor
		}
	}
	rows, err := d.query(ctx,
		`SELECT `+db.UserColumns+`, u.seq FROM users u WHERE u.seq > ? ORDER BY u.seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, nil, dbError(err)
	}
	defer rows.Close()
	var (
		users   []*auth.User
		cursors []string
	)
	for rows.Next() {
		var seq int64
		u, err := scanUser(rows, &seq)
		if err != nil {
			return nil, nil, err
		}
		users = append(users, u)
		cursors = append(cursors, base64.RawURLEncoding.EncodeToString([]byte("user:"+strconv.FormatInt(seq, 10))))
	}
	return users, cursors, dbError(rows.Err())
}

// updateOne runs a statement that must change exactly one row, else
// auth.ErrNotFound.
func updateOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return auth.ErrNotFound
	}
	return nil
}
