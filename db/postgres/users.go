package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"authql/auth"
	"authql/db"
)

// scanUser scans db.UserColumns, then extra, from row.
func scanUser(row pgx.Row, extra ...any) (*auth.User, error) {
	var r db.UserRow
	if err := row.Scan(append(r.Dest(), extra...)...); err != nil {
		return nil, dbError(err)
	}
	return r.User(), nil
}

// CreateUser inserts u, or returns auth.ErrUsernameTaken: the unique index
// on username_key picks one winner among concurrent signups of a name.
func (d *DB) CreateUser(ctx context.Context, u *auth.User, passwordHash []byte) error {
	_, err := d.exec(ctx, `
		INSERT INTO users (id, username, username_key, email, full_name, password_hash, disabled, scopes, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, u.Username, auth.UsernameKey(u.Username), u.Email, u.FullName, passwordHash,
		u.Disabled, auth.FormatScope(u.Scopes), db.UnixNano(u.CreatedAt))
	if errors.Is(err, errUnique) {
		return auth.ErrUsernameTaken
	}
	return err
}

// UserByUsername returns the user with username key key and its
// credentials, or auth.ErrNotFound.
func (d *DB) UserByUsername(ctx context.Context, key string) (*auth.User, auth.Credentials, error) {
	return d.userBy(ctx, `u.username_key = $1`, key)
}

// UserByID returns the user with id and its credentials, or
// auth.ErrNotFound.
func (d *DB) UserByID(ctx context.Context, id string) (*auth.User, auth.Credentials, error) {
	return d.userBy(ctx, `u.id = $1`, id)
}

func (d *DB) userBy(ctx context.Context, where, arg string) (*auth.User, auth.Credentials, error) {
	var (
		r db.UserRow
		c auth.Credentials
	)
	err := d.queryRow(ctx,
		`SELECT `+db.UserColumns+`, u.password_hash, u.credential_version FROM users u WHERE `+where,
		[]any{arg}, append(r.Dest(), &c.Hash, &c.Version)...)
	if err != nil {
		return nil, c, err
	}
	return r.User(), c, nil
}

// SetPasswordHash replaces the password hash of user id, moves its
// credential version on and revokes its live sessions but the kept one, if
// change (when set) still holds: see auth.UserStore. The user's row is
// locked first, as every transaction that changes a user and its sessions
// does, so that they queue instead of deadlocking; the kept session's row
// is locked too, so that its logout cannot commit between the check and
// the change.
func (d *DB) SetPasswordHash(ctx context.Context, id string, hash []byte, change *auth.PasswordChange, now time.Time) error {
	return d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var (
			version  int64
			disabled bool
		)
		err := tx.QueryRow(ctx, `SELECT credential_version, disabled FROM users WHERE id = $1 FOR UPDATE`, id).
			Scan(&version, &disabled)
		if err != nil {
			return err
		}
		keep := ""
		if change != nil {
			keep = change.KeepSession
			var live bool
			err := tx.QueryRow(ctx, `
				SELECT revoked_at IS NULL AND expires_at > $3 FROM sessions
				WHERE id = $1 AND user_id = $2 FOR SHARE`, keep, id, db.UnixNano(now)).Scan(&live)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if !live || version != change.Version || disabled {
				return auth.ErrCredentialsChanged
			}
		}
		if _, err := tx.Exec(ctx,
			`UPDATE users SET password_hash = $1, credential_version = credential_version + 1 WHERE id = $2`, hash, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx,
			`UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL`,
			db.UnixNano(now), id, keep)
		return err
	})
}

// UpgradePasswordHash replaces the password hash of user id if its
// credential version is still version, and reports whether it did.
func (d *DB) UpgradePasswordHash(ctx context.Context, id string, hash []byte, version int64) (bool, error) {
	n, err := d.exec(ctx,
		`UPDATE users SET password_hash = $1 WHERE id = $2 AND credential_version = $3`, hash, id, version)
	return n == 1, err
}

// SetUserDisabled sets the disabled flag of user id; disabling revokes its
// live sessions at now and moves its credential version on. It returns the
// user or auth.ErrNotFound.
func (d *DB) SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time, check func(*auth.User) error) (*auth.User, error) {
	var u *auth.User
	err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) (err error) {
		if err := checkUser(ctx, tx, id, check); err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `
			UPDATE users u SET disabled = $1, credential_version = credential_version + CASE WHEN $1 THEN 1 ELSE 0 END
			WHERE id = $2 RETURNING `+db.UserColumns, disabled, id))
		if err != nil || !disabled {
			return err
		}
		return revokeSessions(ctx, tx, id, now)
	})
	return u, err
}

// UpdateUserScopes replaces the scopes of user id by what update makes of
// them, with the user's row locked in between, and returns the user, or
// auth.ErrNotFound.
func (d *DB) UpdateUserScopes(ctx context.Context, id string, update func(current []string) ([]string, error)) (*auth.User, error) {
	var u *auth.User
	err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		current, err := scanUser(tx.QueryRow(ctx, `SELECT `+db.UserColumns+` FROM users u WHERE u.id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		scopes, err := update(current.Scopes)
		if err != nil {
			return err
		}
		if err := updateOne(ctx, tx, `UPDATE users SET scopes = $1 WHERE id = $2`, auth.FormatScope(scopes), id); err != nil {
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
			WHERE u.username_key = $1 AND a.addr = $2 AND a.last_success_at >= $3)`,
		[]any{key, addr, db.UnixNano(since)}, &known)
	return known, err
}

// MaxPasswordCost returns the highest bcrypt cost among the stored password
// hashes and client secret hashes, or 0 without any. It reads every row:
// call it at start and now and then, not per request.
func (d *DB) MaxPasswordCost(ctx context.Context) (int, error) {
	// A bcrypt hash is $2a$NN$…: the cost is its 5th and 6th bytes.
	var cost *int
	err := d.queryRow(ctx, `
		SELECT max(convert_from(substring(h FROM 5 FOR 2), 'SQL_ASCII')::int) FROM (
			SELECT password_hash AS h FROM users
			UNION ALL SELECT secret_hash FROM clients WHERE secret_hash IS NOT NULL) AS hashes`, nil, &cost)
	if cost == nil {
		return 0, err
	}
	return *cost, err
}

// DeleteUser deletes user id with its sessions, refresh tokens and login
// addresses (by cascade), or returns auth.ErrNotFound.
func (d *DB) DeleteUser(ctx context.Context, id string, check func(*auth.User) error) error {
	if check == nil {
		return d.execOne(ctx, `DELETE FROM users WHERE id = $1`, id)
	}
	return d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := checkUser(ctx, tx, id, check); err != nil {
			return err
		}
		return updateOne(ctx, tx, `DELETE FROM users WHERE id = $1`, id)
	})
}

// checkUser calls check, when not nil, with user id as it stands, its row
// locked FOR UPDATE until tx ends, so that no change of the user commits
// between the check and what tx does next.
func checkUser(ctx context.Context, tx pgx.Tx, id string, check func(*auth.User) error) error {
	if check == nil {
		return nil
	}
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+db.UserColumns+` FROM users u WHERE u.id = $1 FOR UPDATE`, id))
	if err != nil {
		return err
	}
	return check(u)
}

// ListUsers returns up to limit users after cursor in creation order, and
// the cursor of each. A cursor is the user's sequence number, opaque to
// clients, in the same form as the SQLite adapter's. Sequence numbers are
// handed out when a user is inserted, not when it commits: a user whose
// signup commits after a later-numbered one was listed may be missing from
// a listing that had passed its number by then (not from a later one).
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
	var (
		users   []*auth.User
		cursors []string
	)
	err := d.read(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx,
			`SELECT `+db.UserColumns+`, u.seq FROM users u WHERE u.seq > $1 ORDER BY u.seq LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			u, err := scanUser(rows, &seq)
			if err != nil {
				return err
			}
			users = append(users, u)
			cursors = append(cursors, base64.RawURLEncoding.EncodeToString([]byte("user:"+strconv.FormatInt(seq, 10))))
		}
		return rows.Err()
	})
	return users, cursors, err
}
