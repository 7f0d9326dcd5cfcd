package auth

import (
	"context"
	"errors"
	"time"
)

// Store is the persistence the Service needs. Methods return ErrNotFound,
// ErrUsernameTaken or ErrBusy where their comments say so, and other errors
// only for faults.
type Store interface {
	// CreateUser inserts u with its password hash. It returns
	// ErrUsernameTaken when UsernameKey(u.Username) is taken.
	CreateUser(ctx context.Context, u *User, passwordHash []byte) error
	// UserByUsername returns the user whose UsernameKey equals key, and its
	// password hash. It returns ErrNotFound when there is none.
	UserByUsername(ctx context.Context, key string) (*User, []byte, error)
	// UserByID returns the user with id, and its password hash, or
	// ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, []byte, error)
	// SetPasswordHash replaces the password hash of user id. When
	// revokeOthersAt is non-zero it also revokes, in the same transaction,
	// every live session of the user except keepSession.
	SetPasswordHash(ctx context.Context, id string, hash []byte, keepSession string, revokeOthersAt time.Time) error
	// SetUserDisabled disables or enables user id; disabling also revokes
	// its sessions at now. It returns the updated user or ErrNotFound.
	SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) (*User, error)
	// SetUserScopes replaces the scopes granted to user id and returns the
	// updated user, or ErrNotFound.
	SetUserScopes(ctx context.Context, id string, scopes []string) (*User, error)
	// ListUsers returns up to limit users created after the one that cursor
	// names ("" for the start), oldest first, each with its own cursor. It
	// returns ErrBadCursor for a cursor it did not make.
	ListUsers(ctx context.Context, cursor string, limit int) ([]*User, []string, error)

	// CreateSession inserts s and its first refresh token, by hash.
	CreateSession(ctx context.Context, s *Session, refreshHash []byte) error
	// SessionWithUser returns session id and its user, or ErrNotFound.
	SessionWithUser(ctx context.Context, id string) (*Session, *User, error)
	// Sessions returns the live sessions of user userID at now, newest first.
	Sessions(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// RefreshToken returns the refresh token stored under hash, or
	// ErrNotFound.
	RefreshToken(ctx context.Context, hash []byte) (*RefreshToken, error)
	// RotateRefreshToken, in one transaction and only if the token stored
	// under parentHash has not been rotated yet: marks it rotated at now,
	// stores childHash as the session's new refresh token, and moves the
	// session's last use to now and its expiry to expiresAt. It reports
	// whether it rotated.
	RotateRefreshToken(ctx context.Context, parentHash, childHash []byte, now, expiresAt time.Time) (bool, error)
	// RevokeSession ends the live session id of user userID at now. It
	// returns ErrNotFound when the user has no such live session.
	RevokeSession(ctx context.Context, userID, id string, now time.Time) error
	// RevokeSessions ends every live session of user userID at now.
	RevokeSessions(ctx context.Context, userID string, now time.Time) error

	// CreateClient inserts c with its secret hash (nil for a public
	// client). It returns ErrClientExists when the id is taken.
	CreateClient(ctx context.Context, c *Client, secretHash []byte) error
	// ClientByID returns client id and its secret hash, or ErrNotFound.
	ClientByID(ctx context.Context, id string) (*Client, []byte, error)
	// Clients returns every client, by id.
	Clients(ctx context.Context) ([]*Client, error)
	// DeleteClient deletes client id and revokes the sessions opened
	// through it at now, or returns ErrNotFound.
	DeleteClient(ctx context.Context, id string, now time.Time) error
	// Scopes returns every scope granted to a user or allowed to a client.
	Scopes(ctx context.Context) ([]string, error)
}

// ErrClientExists is returned by Store.CreateClient for a taken id.
var ErrClientExists = errors.New("client exists")

// ErrBadCursor is returned by Store.ListUsers for a cursor it did not make.
var ErrBadCursor = fieldError("after", "after is not a cursor returned by users")

// RefreshToken is a stored refresh token with what it opens.
type RefreshToken struct {
	Session *Session
	User    *User
	// RotatedAt is when the token was exchanged for its child, or nil while
	// it is the session's current token.
	RotatedAt *time.Time
}
