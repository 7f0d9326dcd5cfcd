package db

import (
	"time"

	"authql/auth"
)

// Dump is every row of an installation in a form that both adapters read
// and write: what 'authql copy' moves from SQLite to PostgreSQL. It keeps
// what the Store interface does not show (hashes, credential versions,
// refresh token hashes, creation order), so that every password, session
// and token works after the move.
type Dump struct {
	// Users are in creation order.
	Users          []DumpUser
	Sessions       []*auth.Session
	RefreshTokens  []DumpRefreshToken
	Clients        []DumpClient
	LoginAddresses []DumpLoginAddress
	SigningKeys    []*auth.SigningKey
	Settings       []DumpSetting
}

// DumpUser is a user with its credentials.
type DumpUser struct {
	auth.User
	Credentials auth.Credentials
}

// DumpRefreshToken is a stored refresh token hash.
type DumpRefreshToken struct {
	Hash      []byte
	SessionID string
	CreatedAt time.Time
	RotatedAt *time.Time
}

// DumpClient is a registered client with its secret hash (nil for a public
// client).
type DumpClient struct {
	auth.Client
	SecretHash []byte
}

// DumpLoginAddress is an address a user logged in from.
type DumpLoginAddress struct {
	UserID        string
	Addr          string
	LastSuccessAt time.Time
}

// DumpSetting is one stored setting.
type DumpSetting struct {
	Key   string
	Value []byte
}
