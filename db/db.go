// Package db states what authql asks of a database beyond auth.Store. Its
// adapters provide it: db/sqlite, the embedded default, one file for one
// host; and db/postgres, for any number of instances on one PostgreSQL
// database. db/storetest is the conformance suite both pass.
package db

import (
	"context"
	"time"

	"authql/auth"
)

// Database is an open authql database: the Store the service runs on, and
// what the server and the CLI do beside it.
type Database interface {
	auth.Store
	// Ping checks that the database answers a query.
	Ping(ctx context.Context) error
	// Secret returns the value of setting key, storing generate() first if
	// the key has none. Concurrent callers, in this process or another, all
	// get the first value stored.
	Secret(ctx context.Context, key string, generate func() []byte) ([]byte, error)
	// Setting returns the value of setting key, or auth.ErrNotFound.
	Setting(ctx context.Context, key string) ([]byte, error)
	// SetSetting stores value as setting key, replacing any value it had.
	SetSetting(ctx context.Context, key string, value []byte) error
	// PurgeSessions deletes the sessions that expired or were revoked
	// before endedBefore, with their refresh tokens, the refresh tokens
	// rotated before rotatedBefore, and the login addresses last used
	// before addrsBefore, and returns how many sessions it deleted.
	PurgeSessions(ctx context.Context, endedBefore, rotatedBefore, addrsBefore time.Time) (int64, error)
	// CountLiveSessions returns how many sessions are live at now. Unlike
	// the other reads it stops when ctx ends, so that a caller may bound it.
	CountLiveSessions(ctx context.Context, now time.Time) (int64, error)
	// Close closes the database.
	Close() error
}

// Observer is told how the database's writes fare (authql's metrics
// package counts them). Its methods must be cheap and safe for concurrent
// use.
type Observer interface {
	// ObserveWriteWait: a write waited this long for a connection (and, on
	// SQLite, for the write lock), whether or not it got one.
	ObserveWriteWait(time.Duration)
	// ObserveWriteBusy: a write failed with auth.ErrBusy, which clients
	// get as 503 with Retry-After.
	ObserveWriteBusy()
}
