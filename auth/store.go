package auth

import (
	"context"
	"errors"
	"time"
)

// Store is the persistence the Service needs, in three parts that an
// adapter may build and test one by one. Methods return the sentinel errors
// below where their comments say so, ErrBusy when the database stays too
// busy, and other errors only for faults.
type Store interface {
	UserStore
	SessionStore
	ClientStore
	KeyStore
}

// UserStore holds users, their credentials, and the addresses they logged
// in from.
type UserStore interface {
	// CreateUser inserts u with its password hash. It returns
	// ErrUsernameTaken when UsernameKey(u.Username) is taken.
	CreateUser(ctx context.Context, u *User, passwordHash []byte) error
	// UserByUsername returns the user whose UsernameKey equals key, and its
	// credentials. It returns ErrNotFound when there is none.
	UserByUsername(ctx context.Context, key string) (*User, Credentials, error)
	// UserByID returns the user with id, and its credentials, or
	// ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, Credentials, error)
	// SetPasswordHash replaces the password hash of user id with a hash of
	// a new password, moves its credential version on, and revokes at now
	// every live session of the user but change.KeepSession, in one
	// transaction. With change set (the user changing their own password),
	// only while the credential version is still change.Version, the user
	// is enabled and change.KeepSession is live at now: else
	// ErrCredentialsChanged, so that a change that checked a password
	// replaced meanwhile loses. It returns ErrNotFound for an unknown user.
	SetPasswordHash(ctx context.Context, id string, hash []byte, change *PasswordChange, now time.Time) error
	// UpgradePasswordHash replaces the password hash of user id with a hash
	// of the same password at another cost, only if its credential version
	// is still version. It reports whether it did.
	UpgradePasswordHash(ctx context.Context, id string, hash []byte, version int64) (bool, error)
	// SetUserDisabled disables or enables user id; disabling also revokes
	// its sessions at now and moves its credential version on. It returns
	// the updated user or ErrNotFound. check, when not nil, is called with
	// the user as it stands, in the same transaction, so that no other
	// change comes between the two: an error of check is returned as is,
	// and nothing changes.
	SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time, check func(*User) error) (*User, error)
	// DeleteUser deletes user id with its sessions, refresh tokens and
	// login addresses, or returns ErrNotFound. check is as for
	// SetUserDisabled.
	DeleteUser(ctx context.Context, id string, check func(*User) error) error
	// UpdateUserScopes calls update with the scopes granted to user id and
	// stores the scopes it returns, in one transaction, so that no other
	// change comes between the two. An error of update is returned as is.
	// It returns the updated user, or ErrNotFound.
	UpdateUserScopes(ctx context.Context, id string, update func(current []string) ([]string, error)) (*User, error)
	// ListUsers returns up to limit users created after the one that cursor
	// names ("" for the start), oldest first, each with its own cursor. It
	// returns ErrBadCursor for a cursor it did not make.
	ListUsers(ctx context.Context, cursor string, limit int) ([]*User, []string, error)
	// MaxPasswordCost returns the highest bcrypt cost among the stored
	// password and client secret hashes, or 0 without any.
	MaxPasswordCost(ctx context.Context) (int, error)
	// KnownLoginAddress reports whether the user whose UsernameKey is key
	// logged in successfully from addr at or after since. An unknown user
	// has no known address.
	KnownLoginAddress(ctx context.Context, key, addr string, since time.Time) (bool, error)
}

// SessionStore holds sessions and their refresh tokens.
type SessionStore interface {
	// CreateSession inserts a session and its first refresh token, and
	// remembers the address of the login, if the user is enabled, its
	// credential version is unchanged and, with ClientRegistered, the
	// session's client is still registered; else it returns
	// ErrCredentialsChanged (or ErrNotFound for a deleted user).
	CreateSession(ctx context.Context, ns NewSession) error
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
	// whether it rotated. It returns ErrNotFound, and rotates nothing, when
	// the token or its session is gone, or the session is no longer live at
	// now (revoked or expired since the token was read).
	RotateRefreshToken(ctx context.Context, parentHash, childHash []byte, now, expiresAt time.Time) (bool, error)
	// RevokeSession ends the live session id of user userID at now. It
	// returns ErrNotFound when the user has no such live session.
	RevokeSession(ctx context.Context, userID, id string, now time.Time) error
	// RevokeSessions ends every live session of user userID at now.
	RevokeSessions(ctx context.Context, userID string, now time.Time) error
}

// ClientStore holds registered OAuth2 clients.
type ClientStore interface {
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

// Credentials are what a password is checked against.
type Credentials struct {
	// Hash is the bcrypt hash of the password.
	Hash []byte
	// Version changes whenever the password changes or the user is
	// disabled; a session opens only if it is the version the password
	// was checked against.
	Version int64
}

// PasswordChange is what a user's own password change checked: the
// credential version of the current password, and the session it came
// from, which stays open.
type PasswordChange struct {
	Version     int64
	KeepSession string
}

// NewSession is a session to open, with what Store.CreateSession checks and
// records beside it.
type NewSession struct {
	Session     *Session
	RefreshHash []byte
	// CredentialVersion is the version of the credentials the login
	// checked.
	CredentialVersion int64
	// LoginAddr, when not empty, is the client address of the login, from
	// which the user may then log in while others are throttled.
	LoginAddr string
	// ClientRegistered says that the login authenticated Session.ClientID
	// as a registered client: the session opens only if the client has not
	// been removed since (its id would then pass as an unregistered public
	// client's, and the session would outlive the removal that ended the
	// others).
	ClientRegistered bool
}

// The errors a Store returns besides faults; the Service translates them
// into what clients are told.
var (
	// ErrNotFound: no row matches.
	ErrNotFound = errors.New("not found")
	// ErrUsernameTaken: a user whose UsernameKey is the new one's exists.
	ErrUsernameTaken = errors.New("username taken")
	// ErrClientExists: CreateClient was given a taken id.
	ErrClientExists = errors.New("client exists")
	// ErrCredentialsChanged: CreateSession found the user's password
	// changed, or the user disabled, since the login checked it.
	ErrCredentialsChanged = errors.New("credentials changed")
	// ErrBadCursor: ListUsers was given a cursor it did not make.
	ErrBadCursor = errors.New("bad cursor")
	// ErrBusy: the database stayed busy for longer than the store waits.
	// Clients are told CodeUnavailable, with Retry-After (AsError).
	ErrBusy = errors.New("the database is busy")
)

// RefreshToken is a stored refresh token with what it opens.
type RefreshToken struct {
	Session *Session
	User    *User
	// RotatedAt is when the token was exchanged for its child, or nil while
	// it is the session's current token.
	RotatedAt *time.Time
}
