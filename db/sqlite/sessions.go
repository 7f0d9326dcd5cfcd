package sqlite

import (
	"context"
	"database/sql"
	"time"

	"authql/auth"
	"authql/db"
)

// scanSession scans db.SessionColumns and then extra from row.
func scanSession(row interface{ Scan(...any) error }, extra ...any) (*auth.Session, error) {
	var r db.SessionRow
	if err := row.Scan(append(r.Dest(), extra...)...); err != nil {
		return nil, dbError(err)
	}
	return r.Session(), nil
}

// CreateSession inserts ns.Session and its first refresh token, and
// remembers ns.LoginAddr, if the user is enabled and its credential version
// is ns.CredentialVersion; else it returns auth.ErrCredentialsChanged, or
// auth.ErrNotFound for a deleted user. The check and the insert share the
// write transaction, so a password change or a disabling that commits
// before it wins.
func (d *DB) CreateSession(ctx context.Context, ns auth.NewSession) error {
	s := ns.Session
	return d.inTx(ctx, func(tx *sql.Tx) error {
		var (
			version  int64
			disabled bool
		)
		err := tx.QueryRowContext(ctx,
			`SELECT credential_version, disabled FROM users WHERE id = ?`, s.UserID).Scan(&version, &disabled)
		if err != nil {
			return err
		}
		if version != ns.CredentialVersion || disabled {
			return auth.ErrCredentialsChanged
		}
		if ns.ClientRegistered {
			var registered bool
			if err := tx.QueryRowContext(ctx,
				`SELECT EXISTS (SELECT 1 FROM clients WHERE id = ?)`, s.ClientID).Scan(&registered); err != nil {
				return err
			}
			if !registered {
				return auth.ErrCredentialsChanged
			}
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO sessions (id, user_id, client_id, user_agent, scopes, created_at, last_used_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.UserID, s.ClientID, s.UserAgent, auth.FormatScope(s.Scopes),
			db.UnixNano(s.CreatedAt), db.UnixNano(s.LastUsedAt), db.UnixNano(s.ExpiresAt))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)`,
			ns.RefreshHash, s.ID, db.UnixNano(s.CreatedAt))
		if err != nil || ns.LoginAddr == "" {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO login_addresses (user_id, addr, last_success_at) VALUES (?, ?, ?)
			ON CONFLICT (user_id, addr) DO UPDATE SET last_success_at = excluded.last_success_at`,
			s.UserID, ns.LoginAddr, db.UnixNano(s.CreatedAt))
		return err
	})
}

// scanSessionUser scans db.SessionColumns, db.UserColumns, then extra, from row.
func scanSessionUser(row rowScanner, extra ...any) (*auth.Session, *auth.User, error) {
	var r db.UserRow
	s, err := scanSession(row, append(r.Dest(), extra...)...)
	if err != nil {
		return nil, nil, err
	}
	return s, r.User(), nil
}

// Sessions returns the live sessions of user userID at now, newest first.
func (d *DB) Sessions(ctx context.Context, userID string, now time.Time) ([]*auth.Session, error) {
	rows, err := d.query(ctx, `
		SELECT `+db.SessionColumns+` FROM sessions s
		WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ?
		ORDER BY s.created_at DESC, s.id`, userID, db.UnixNano(now))
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	sessions := []*auth.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		sessions = append(sessions, s)
	}
	return sessions, dbError(rows.Err())
}

// CountLiveSessions returns how many sessions are live at now: not revoked
// and not expired, whoever their user. It reads the partial index
// sessions_live only. Unlike the other reads it stops when ctx ends, so
// that a caller may bound it (a metrics scrape waits for it).
func (d *DB) CountLiveSessions(ctx context.Context, now time.Time) (int64, error) {
	stmt, err := d.readStmt(ctx, countLiveSessions)
	if err != nil {
		return 0, err
	}
	var n int64
	err = stmt.QueryRowContext(ctx, db.UnixNano(now)).Scan(&n)
	return n, dbError(err)
}

// countLiveSessions repeats the WHERE clause of the index sessions_live.
const countLiveSessions = `SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?`

// SessionWithUser returns session id and its user, or auth.ErrNotFound. It
// runs on every authenticated request: the answer comes from the session
// cache while no transaction has committed since it was read (see
// sessionCache), else from the database.
func (d *DB) SessionWithUser(ctx context.Context, id string) (*auth.Session, *auth.User, error) {
	stamp, trusted := d.cache.stamp()
	if trusted {
		if s, u, ok := d.cache.get(id, stamp); ok {
			return s, u, nil
		}
		if d.cache.beforeRead != nil {
			d.cache.beforeRead()
		}
	}
	s, u, err := d.readSessionWithUser(ctx, id)
	if trusted && err == nil {
		if d.cache.afterRead != nil {
			d.cache.afterRead()
		}
		d.cache.put(id, stamp, s, u)
	}
	return s, u, err
}

// readSessionWithUser reads session id and its user from the database.
//
// The id is cast because with a bare parameter in this join SQLite (3.54)
// re-prepares the statement every time it runs: its planner marks the
// parameter as one whose value may change the plan. Re-preparing cost more
// than the lookup itself (BenchmarkSessionWithUser: 28 µs against 10 µs);
// TestPerRequestReadsAreNotReprepared fails if it comes back.
func (d *DB) readSessionWithUser(ctx context.Context, id string) (*auth.Session, *auth.User, error) {
	return scanSessionUser(d.queryRow(ctx, `
		SELECT `+db.SessionColumns+`, `+db.UserColumns+`
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = CAST(? AS TEXT)`, id))
}

// RefreshToken returns the refresh token stored under hash with its session
// and user, or auth.ErrNotFound. The hash is cast for the reason
// SessionWithUser gives.
func (d *DB) RefreshToken(ctx context.Context, hash []byte) (*auth.RefreshToken, error) {
	var rotated *int64
	s, u, err := scanSessionUser(d.queryRow(ctx, `
		SELECT `+db.SessionColumns+`, `+db.UserColumns+`, t.rotated_at
		FROM refresh_tokens t
		JOIN sessions s ON s.id = t.session_id
		JOIN users u ON u.id = s.user_id
		WHERE t.hash = CAST(? AS BLOB)`, hash), &rotated)
	if err != nil {
		return nil, err
	}
	return &auth.RefreshToken{Session: s, User: u, RotatedAt: db.FromNullUnixNano(rotated)}, nil
}

// RotateRefreshToken replaces the refresh token parentHash by childHash if
// parentHash has not been rotated yet and its session is live, and reports
// whether it did; see auth.SessionStore. The write transaction holds the
// database's write lock, so no logout or revocation commits between the
// check and the rotation.
func (d *DB) RotateRefreshToken(ctx context.Context, parentHash, childHash []byte, now, expiresAt time.Time) (bool, error) {
	rotated := false
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		var (
			sessionID string
			live      bool
		)
		err := tx.QueryRowContext(ctx, `
			SELECT s.id, s.revoked_at IS NULL AND s.expires_at > ?
			FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
			WHERE t.hash = ?`, db.UnixNano(now), parentHash).Scan(&sessionID, &live)
		if err != nil {
			return err
		}
		if !live {
			return auth.ErrNotFound
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL`, db.UnixNano(now), parentHash)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // n == 0: rotated already, by a concurrent request
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)`,
			childHash, sessionID, db.UnixNano(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE id = ?`,
			db.UnixNano(now), db.UnixNano(expiresAt), sessionID); err != nil {
			return err
		}
		rotated = true
		return nil
	})
	return rotated, err
}

// RevokeSession ends the live session id of user userID, or returns
// auth.ErrNotFound when there is none.
func (d *DB) RevokeSession(ctx context.Context, userID, id string, now time.Time) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		return updateOne(ctx, tx, `
			UPDATE sessions SET revoked_at = ?
			WHERE id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?`,
			db.UnixNano(now), id, userID, db.UnixNano(now))
	})
}

// RevokeSessions ends every live session of user userID.
func (d *DB) RevokeSessions(ctx context.Context, userID string, now time.Time) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		return revokeSessions(ctx, tx, userID, now)
	})
}

func revokeSessions(ctx context.Context, tx *sql.Tx, userID string, now time.Time) error {
	_, err := tx.ExecContext(ctx,
		`UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`,
		db.UnixNano(now), userID)
	return err
}

// PurgeSessions deletes the sessions that expired or were revoked before
// endedBefore, with their refresh tokens, the refresh tokens of live
// sessions rotated before rotatedBefore, and the login addresses last used
// before addrsBefore, and returns how many sessions it deleted. Without it,
// ended sessions, every rotated refresh token's hash (rotation extends a
// session, so a session refreshed for months would keep them all) and
// every address a user ever logged in from would stay forever.
func (d *DB) PurgeSessions(ctx context.Context, endedBefore, rotatedBefore, addrsBefore time.Time) (int64, error) {
	var n int64
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1`, db.UnixNano(endedBefore))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx,
			`DELETE FROM refresh_tokens WHERE rotated_at < ?`, db.UnixNano(rotatedBefore)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`DELETE FROM login_addresses WHERE last_success_at < ?`, db.UnixNano(addrsBefore))
		return err
	})
	return n, err
}
