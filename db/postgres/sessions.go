package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"authql/auth"
	"authql/db"
)

// scanSession scans db.SessionColumns and then extra from row.
func scanSession(row pgx.Row, extra ...any) (*auth.Session, error) {
	var r db.SessionRow
	if err := row.Scan(append(r.Dest(), extra...)...); err != nil {
		return nil, dbError(err)
	}
	return r.Session(), nil
}

// scanSessionUser scans db.SessionColumns, db.UserColumns, then extra, from row.
func scanSessionUser(row pgx.Row, extra ...any) (*auth.Session, *auth.User, error) {
	var r db.UserRow
	s, err := scanSession(row, append(r.Dest(), extra...)...)
	if err != nil {
		return nil, nil, err
	}
	return s, r.User(), nil
}

// CreateSession inserts ns.Session and its first refresh token, and
// remembers ns.LoginAddr, if the user is enabled and its credential version
// is ns.CredentialVersion; else it returns auth.ErrCredentialsChanged, or
// auth.ErrNotFound for a deleted user. The user's row is read FOR SHARE: a
// password change or a disabling that commits first is seen here, and one
// that comes later waits for this transaction and then revokes the new
// session with the others.
func (d *DB) CreateSession(ctx context.Context, ns auth.NewSession) error {
	s := ns.Session
	return d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var (
			version  int64
			disabled bool
		)
		err := tx.QueryRow(ctx,
			`SELECT credential_version, disabled FROM users WHERE id = $1 FOR SHARE`, s.UserID).Scan(&version, &disabled)
		if err != nil {
			return err
		}
		if version != ns.CredentialVersion || disabled {
			return auth.ErrCredentialsChanged
		}
		if ns.ClientRegistered {
			// FOR SHARE: a removal of the client that commits first is seen
			// here; one that comes later waits, then revokes this session.
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM clients WHERE id = $1 FOR SHARE`, s.ClientID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return auth.ErrCredentialsChanged
			}
			if err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO sessions (id, user_id, client_id, user_agent, scopes, created_at, last_used_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			s.ID, s.UserID, s.ClientID, s.UserAgent, auth.FormatScope(s.Scopes),
			db.UnixNano(s.CreatedAt), db.UnixNano(s.LastUsedAt), db.UnixNano(s.ExpiresAt)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)`,
			ns.RefreshHash, s.ID, db.UnixNano(s.CreatedAt)); err != nil || ns.LoginAddr == "" {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO login_addresses (user_id, addr, last_success_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, addr) DO UPDATE SET last_success_at = greatest(login_addresses.last_success_at, excluded.last_success_at)`,
			s.UserID, ns.LoginAddr, db.UnixNano(s.CreatedAt))
		return err
	})
}

// SessionWithUser returns session id and its user, or auth.ErrNotFound. It
// runs on every authenticated request: one indexed join, prepared once per
// pooled connection, one round trip.
func (d *DB) SessionWithUser(ctx context.Context, id string) (*auth.Session, *auth.User, error) {
	var (
		s *auth.Session
		u *auth.User
	)
	err := d.read(ctx, func(ctx context.Context, c *pgxpool.Conn) (err error) {
		s, u, err = scanSessionUser(c.QueryRow(ctx, `
			SELECT `+db.SessionColumns+`, `+db.UserColumns+`
			FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.id = $1`, id))
		return err
	})
	return s, u, err
}

// Sessions returns the live sessions of user userID at now, newest first.
func (d *DB) Sessions(ctx context.Context, userID string, now time.Time) ([]*auth.Session, error) {
	sessions := []*auth.Session{}
	err := d.read(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT `+db.SessionColumns+` FROM sessions s
			WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
			ORDER BY s.created_at DESC, s.id`, userID, db.UnixNano(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanSession(rows)
			if err != nil {
				return err
			}
			sessions = append(sessions, s)
		}
		return rows.Err()
	})
	return sessions, err
}

// CountLiveSessions returns how many sessions are live at now. Unlike the
// other reads it stops when ctx ends, so that a caller may bound it.
func (d *DB) CountLiveSessions(ctx context.Context, now time.Time) (int64, error) {
	c, err := d.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	var n int64
	err = c.QueryRow(ctx,
		`SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1`, db.UnixNano(now)).Scan(&n)
	return n, dbError(err)
}

// RefreshToken returns the refresh token stored under hash with its session
// and user, or auth.ErrNotFound.
func (d *DB) RefreshToken(ctx context.Context, hash []byte) (*auth.RefreshToken, error) {
	var (
		rt      auth.RefreshToken
		rotated *int64
	)
	err := d.read(ctx, func(ctx context.Context, c *pgxpool.Conn) (err error) {
		rt.Session, rt.User, err = scanSessionUser(c.QueryRow(ctx, `
			SELECT `+db.SessionColumns+`, `+db.UserColumns+`, t.rotated_at
			FROM refresh_tokens t
			JOIN sessions s ON s.id = t.session_id
			JOIN users u ON u.id = s.user_id
			WHERE t.hash = $1`, hash), &rotated)
		return err
	})
	if err != nil {
		return nil, err
	}
	rt.RotatedAt = db.FromNullUnixNano(rotated)
	return &rt, nil
}

// RotateRefreshToken replaces the refresh token parentHash by childHash if
// parentHash has not been rotated yet and its session is live, and reports
// whether it did; see auth.SessionStore. The session's row is locked first,
// in the order in which a logout, a revocation and a user's deletion take
// their locks (session, then refresh tokens), so that none of them can
// commit between the check and the rotation, nor deadlock with it. Of
// concurrent rotations of one token, in any instances, the first takes
// the lock; the others wait for it, find rotated_at set, and change nothing.
func (d *DB) RotateRefreshToken(ctx context.Context, parentHash, childHash []byte, now, expiresAt time.Time) (bool, error) {
	rotated := false
	err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rotated = false
		var (
			sessionID string
			live      bool
		)
		err := tx.QueryRow(ctx, `
			SELECT s.id, s.revoked_at IS NULL AND s.expires_at > $2
			FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
			WHERE t.hash = $1 FOR NO KEY UPDATE OF s`, parentHash, db.UnixNano(now)).Scan(&sessionID, &live)
		if err != nil {
			return err
		}
		if !live {
			return auth.ErrNotFound
		}
		n, err := txExec(ctx, tx,
			`UPDATE refresh_tokens SET rotated_at = $1 WHERE hash = $2 AND rotated_at IS NULL`, db.UnixNano(now), parentHash)
		if err != nil || n == 0 {
			return err // n == 0: rotated already, by a concurrent request
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)`,
			childHash, sessionID, db.UnixNano(now)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`UPDATE sessions SET last_used_at = $1, expires_at = $2 WHERE id = $3`,
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
	return d.execOne(ctx, `
		UPDATE sessions SET revoked_at = $1
		WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > $1`,
		db.UnixNano(now), id, userID)
}

// RevokeSessions ends every live session of user userID.
func (d *DB) RevokeSessions(ctx context.Context, userID string, now time.Time) error {
	return d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return revokeSessions(ctx, tx, userID, now)
	})
}

func revokeSessions(ctx context.Context, tx pgx.Tx, userID string, now time.Time) error {
	_, err := tx.Exec(ctx,
		`UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL`, db.UnixNano(now), userID)
	return err
}

// PurgeSessions deletes the sessions that ended before endedBefore with
// their refresh tokens, the refresh tokens rotated before rotatedBefore,
// and the login addresses of users and of clients last used before
// addrsBefore. It returns how many sessions it deleted.
func (d *DB) PurgeSessions(ctx context.Context, endedBefore, rotatedBefore, addrsBefore time.Time) (int64, error) {
	var n int64
	err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) (err error) {
		if n, err = txExec(ctx, tx,
			`DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`, db.UnixNano(endedBefore)); err != nil {
			return err
		}
		for _, purge := range []struct {
			query  string
			before time.Time
		}{
			{`DELETE FROM refresh_tokens WHERE rotated_at < $1`, rotatedBefore},
			{`DELETE FROM login_addresses WHERE last_success_at < $1`, addrsBefore},
			{`DELETE FROM known_client_addresses WHERE last_success_at < $1`, addrsBefore},
		} {
			if _, err := tx.Exec(ctx, purge.query, db.UnixNano(purge.before)); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
