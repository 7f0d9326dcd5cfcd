// Package db stores authql's users, sessions and settings in SQLite. It
// implements auth.Store with plain SQL.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"

	"authql/auth"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune how long writes wait. The zero value means the defaults.
type Options struct {
	// BusyTimeout is how long a connection waits for another process (the
	// CLI beside the server) to release the write lock; default 5s.
	BusyTimeout time.Duration
	// WriteWait bounds how long a write queues for the writer connection
	// and runs; default 5s. Past either, the write fails with auth.ErrBusy,
	// which clients get as 503 with Retry-After.
	WriteWait time.Duration
}

// DB is an open authql database: one connection that does every write, so
// that writes queue in Go instead of failing with "database is locked", and a
// pool of read-only connections that WAL lets read beside it.
type DB struct {
	write     *sql.DB
	read      *sql.DB
	writeWait time.Duration
	// stmts caches prepared read statements by query text: preparing costs
	// as much as running the queries that run on every request.
	stmts sync.Map // string -> *sql.Stmt
}

var _ auth.Store = (*DB)(nil)

// Open opens (creating it if needed) the SQLite file at path and applies the
// migrations it lacks.
func Open(ctx context.Context, path string, opts ...Options) (*DB, error) {
	if path == "" || path == ":memory:" {
		// Every pooled connection would get its own empty database.
		return nil, errors.New("the database path must name a file")
	}
	o := Options{BusyTimeout: 5 * time.Second, WriteWait: 5 * time.Second}
	for _, opt := range opts {
		if opt.BusyTimeout > 0 {
			o.BusyTimeout = opt.BusyTimeout
		}
		if opt.WriteWait > 0 {
			o.WriteWait = opt.WriteWait
		}
	}
	write, err := sql.Open("sqlite3", dsn(path, o.BusyTimeout, url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	db := &DB{write: write, writeWait: o.WriteWait}
	if err := db.migrate(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read, err := sql.Open("sqlite3", dsn(path, o.BusyTimeout, url.Values{"_query_only": {"true"}, "_txlock": {"deferred"}}))
	if err != nil {
		write.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	db.read = read
	return db, nil
}

// dsn is the go-sqlite3 data source for path. Per-connection settings go
// here, not in PRAGMA statements, because a PRAGMA run with Exec reaches only
// one connection of the pool.
func dsn(path string, busyTimeout time.Duration, extra url.Values) string {
	q := url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_foreign_keys": {"on"},
		"_busy_timeout": {fmt.Sprint(busyTimeout.Milliseconds())},
	}
	for k, v := range extra {
		q[k] = v
	}
	// A SQLite URI filename: the path with the characters that would end it
	// or start an escape percent-encoded.
	return "file:" + uriPath.Replace(path) + "?" + q.Encode()
}

var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func (db *DB) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	errs := []error{}
	db.stmts.Range(func(_, stmt any) bool {
		errs = append(errs, stmt.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(append(errs, db.read.Close(), db.write.Close())...)
}

// readStmt returns the prepared read statement for query, preparing it on
// first use. database/sql prepares it again on each pooled connection that
// needs it, once.
func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := db.stmts.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, dbError(err)
	}
	if prev, loaded := db.stmts.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return prev.(*sql.Stmt), nil
	}
	return stmt, nil
}

// queryRow runs a read query that returns at most one row. Reads ignore the
// cancellation of ctx: they are short (an indexed lookup, a page of users,
// one user's sessions), and cancelling one midway would only turn a client
// that hung up into an internal error.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	ctx = context.WithoutCancel(ctx)
	stmt, err := db.readStmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return stmt.QueryRowContext(ctx, args...)
}

// query runs a read query, ignoring the cancellation of ctx as queryRow does.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	stmt, err := db.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	return rows, dbError(err)
}

// rowScanner is a *sql.Row, or the error of preparing its query.
type rowScanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Ping checks that the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.queryRow(ctx, "SELECT 1").Scan(&one)
}

// Secret returns the value of setting key, storing generate() first if the
// key has none. Concurrent callers, in this process or another, all get the
// first value stored.
func (db *DB) Secret(ctx context.Context, key string, generate func() []byte) ([]byte, error) {
	var value []byte
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, generate())
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
	})
	return value, err
}

// dbError translates driver errors into the auth package's vocabulary.
func dbError(err error) error {
	var se sqlite3.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return auth.ErrNotFound
	case errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked):
		return fmt.Errorf("%w: %v", auth.ErrBusy, err)
	case errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique:
		return fmt.Errorf("%w: %v", errUnique, err)
	}
	return err
}

var errUnique = errors.New("unique constraint violated")

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN) and
// commits it when fn returns nil. Every write goes through here, so that all
// of them queue for the one writer connection for at most writeWait, and
// fail with auth.ErrBusy past it.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	wctx, cancel := context.WithTimeout(ctx, db.writeWait)
	defer cancel()
	err := func() error {
		tx, err := db.write.BeginTx(wctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: waited %v for the writer", auth.ErrBusy, db.writeWait)
	}
	return dbError(err)
}

// Times are stored as Unix nanoseconds.
func unixNano(t time.Time) int64 { return t.UnixNano() }

func fromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNullUnixNano(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromUnixNano(n.Int64)
	return &t
}
