package db

import (
	"strings"
	"time"

	"authql/auth"
)

// What both adapters store alike: times as Unix nanoseconds (a time reads
// back exactly as it was written), and scopes and grant types as
// space-delimited text.

// UnixNano is how a time is stored.
func UnixNano(t time.Time) int64 { return t.UnixNano() }

// NullUnixNano is how an optional time is stored: nil is NULL.
func NullUnixNano(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := UnixNano(*t)
	return &n
}

// FromUnixNano reads a stored time, in UTC.
func FromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// FromNullUnixNano reads a stored optional time.
func FromNullUnixNano(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := FromUnixNano(*n)
	return &t
}

// SplitList reads a stored space-delimited list; never nil, so that
// GraphQL's [String!]! gets [] for a user without scopes.
func SplitList(s string) []string {
	return append([]string{}, strings.Fields(s)...)
}

// UserColumns are a user's columns, of the table aliased u, in the order
// UserRow.Dest scans them.
const UserColumns = `u.id, u.username, u.email, u.full_name, u.disabled, u.scopes, u.created_at`

// UserRow receives UserColumns.
type UserRow struct {
	u       auth.User
	scopes  string
	created int64
}

// Dest returns the scan destinations of UserColumns.
func (r *UserRow) Dest() []any {
	return []any{&r.u.ID, &r.u.Username, &r.u.Email, &r.u.FullName, &r.u.Disabled, &r.scopes, &r.created}
}

// User returns the user scanned.
func (r *UserRow) User() *auth.User {
	r.u.Scopes, r.u.CreatedAt = SplitList(r.scopes), FromUnixNano(r.created)
	return &r.u
}

// SessionColumns are a session's columns, of the table aliased s, in the
// order SessionRow.Dest scans them.
const SessionColumns = `s.id, s.user_id, s.client_id, s.user_agent, s.scopes,
	s.created_at, s.last_used_at, s.expires_at, s.revoked_at`

// SessionRow receives SessionColumns.
type SessionRow struct {
	s                          auth.Session
	scopes                     string
	created, lastUsed, expires int64
	revoked                    *int64
}

// Dest returns the scan destinations of SessionColumns.
func (r *SessionRow) Dest() []any {
	return []any{&r.s.ID, &r.s.UserID, &r.s.ClientID, &r.s.UserAgent, &r.scopes,
		&r.created, &r.lastUsed, &r.expires, &r.revoked}
}

// Session returns the session scanned.
func (r *SessionRow) Session() *auth.Session {
	r.s.Scopes = SplitList(r.scopes)
	r.s.CreatedAt, r.s.LastUsedAt, r.s.ExpiresAt = FromUnixNano(r.created), FromUnixNano(r.lastUsed), FromUnixNano(r.expires)
	r.s.RevokedAt = FromNullUnixNano(r.revoked)
	return &r.s
}

// ClientColumns are a client's columns in the order ClientRow.Dest scans
// them.
const ClientColumns = `id, secret_hash, grant_types, scopes, created_at`

// ClientRow receives ClientColumns.
type ClientRow struct {
	c              auth.Client
	hash           []byte
	grants, scopes string
	created        int64
}

// Dest returns the scan destinations of ClientColumns.
func (r *ClientRow) Dest() []any {
	return []any{&r.c.ID, &r.hash, &r.grants, &r.scopes, &r.created}
}

// Client returns the client scanned and its secret hash (nil for a public
// client).
func (r *ClientRow) Client() (*auth.Client, []byte) {
	r.c.Confidential, r.c.Registered = r.hash != nil, true
	r.c.GrantTypes, r.c.Scopes, r.c.CreatedAt = SplitList(r.grants), SplitList(r.scopes), FromUnixNano(r.created)
	return &r.c, r.hash
}
