// Package sqlite stores authql's users, sessions and settings in SQLite. It
// implements auth.Store with plain SQL.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"

	"authql/auth"
	"authql/db"
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
	// MustExist refuses to create the database: Open fails with
	// ErrNoDatabase when there is no file at the path.
	MustExist bool
	// Metrics is told how long each write waited for the writer and of
	// each write that gave up busy; nil means no metrics.
	Metrics db.Observer
}

// ErrNoDatabase is returned by Open with Options.MustExist when the file
// does not exist.
var ErrNoDatabase = errors.New("no database")

// DB is an open authql database: one connection that does every write, so
// that writes queue in Go instead of failing with "database is locked", and a
// pool of read-only connections that WAL lets read beside it.
type DB struct {
	write     *sql.DB
	read      *sql.DB
	writeWait time.Duration
	metrics   db.Observer
	// stmts caches prepared read statements by query text: preparing costs
	// as much as running the queries that run on every request.
	stmts sync.Map // string -> *sql.Stmt
	// cache answers SessionWithUser while nothing has committed; nil
	// when the wal-index cannot be read (every request reads).
	cache *sessionCache
}

var _ db.Database = (*DB)(nil)

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
		o.MustExist = o.MustExist || opt.MustExist
		if opt.Metrics != nil {
			o.Metrics = opt.Metrics
		}
	}
	if o.MustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			abs, absErr := filepath.Abs(path)
			if absErr != nil {
				abs = path
			}
			return nil, fmt.Errorf("%w at %s: start the server once, or run 'authql migrate', to create it", ErrNoDatabase, abs)
		}
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	write, err := sql.Open("sqlite3", dsn(path, o.BusyTimeout, url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	d := &DB{write: write, writeWait: o.WriteWait, metrics: o.Metrics}
	if err := d.migrate(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// SQLite gives -wal and -shm the mode of the database; an operator may
	// have loosened either since. They are beside the file SQLite opened,
	// which a symbolic link at path may name.
	file, err := d.file(ctx)
	if err == nil {
		err = checkPrivate(file)
	}
	if err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite3", dsn(path, o.BusyTimeout, url.Values{"_query_only": {"true"}, "_txlock": {"deferred"}}))
	if err != nil {
		write.Close()
		return nil, err
	}
	// The CPUs, not GOMAXPROCS, which the bcrypt pool raises while it hashes.
	n := max(4, runtime.NumCPU())
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	d.read = read
	// The session cache needs the wal-index of a WAL database; in any
	// other mode, or without a -shm file to map, every request reads.
	var mode string
	if err := read.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err == nil && mode == "wal" {
		d.cache = newSessionCache(file)
	}
	return d, nil
}

// file returns the database file's name as SQLite resolved it (symbolic
// links followed): its -wal and -shm files are beside that name.
func (d *DB) file(ctx context.Context) (string, error) {
	var (
		seq          int
		name, source string
	)
	err := d.write.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &source)
	return source, dbError(err)
}

// createPrivate creates the database file at path, empty and readable by its
// owner only, unless it exists. SQLite would create it with the process's
// umask, typically 0644, and it holds password hashes and secrets.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("create %s: the directory %s does not exist", path, dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("create %s: the directory %s is not writable by this user", path, dir)
	case err != nil:
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// ErrNotPrivate is returned by Open when the database file, its -wal or its
// -shm may be read or written by group or others.
var ErrNotPrivate = errors.New("the database is readable or writable by others")

// checkPrivate refuses a database whose file or companion files carry any
// permission for group or others: anyone who can read them can read every
// password hash and the server's secrets.
func checkPrivate(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check the mode of %s: %w", p, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return fmt.Errorf("%w: %s has mode %04o, but it holds password hashes and secrets; "+
				"allow its owner only: chmod 600 %s", ErrNotPrivate, p, perm, shellQuote(p))
		}
	}
	return nil
}

// shellQuote quotes s for a command line that a user may copy.
func shellQuote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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

func (d *DB) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, d.write, dir,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(usernameKeysMigration()))
	if err != nil {
		return err
	}
	// Another process (the CLI beside the server) may be migrating the same
	// file: it may apply a migration between our reading the version and
	// applying it (an ALTER TABLE then fails here), or hold the lock that
	// goose's first statements need. A later run reads the version again
	// and finds nothing left to do; a real fault fails every time.
	for attempt := range 5 {
		if _, err = p.Up(ctx); err == nil {
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return fmt.Errorf("migrate: %w", err)
}

// Close closes both pools, then lets go of the session cache's wal-index.
func (d *DB) Close() error {
	d.cache.stop()
	errs := []error{}
	d.stmts.Range(func(_, stmt any) bool {
		errs = append(errs, stmt.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(append(errs, d.read.Close(), d.write.Close())...)
}

// readStmt returns the prepared read statement for query, preparing it on
// first use. database/sql prepares it again on each pooled connection that
// needs it, once.
func (d *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := d.stmts.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := d.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, dbError(err)
	}
	if prev, loaded := d.stmts.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return prev.(*sql.Stmt), nil
	}
	return stmt, nil
}

// queryRow runs a read query that returns at most one row. Reads ignore the
// cancellation of ctx: they are short (an indexed lookup, a page of users,
// one user's sessions), and cancelling one midway would only turn a client
// that hung up into an internal error.
func (d *DB) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	ctx = context.WithoutCancel(ctx)
	stmt, err := d.readStmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return stmt.QueryRowContext(ctx, args...)
}

// query runs a read query, ignoring the cancellation of ctx as queryRow does.
func (d *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	stmt, err := d.readStmt(ctx, query)
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
func (d *DB) Ping(ctx context.Context) error {
	var one int
	return d.queryRow(ctx, "SELECT 1").Scan(&one)
}

// Secret returns the value of setting key, storing generate() first if the
// key has none. Concurrent callers, in this process or another, all get the
// first value stored.
func (d *DB) Secret(ctx context.Context, key string, generate func() []byte) ([]byte, error) {
	var value []byte
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, generate())
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
	})
	return value, err
}

// Setting returns the value of setting key, or auth.ErrNotFound.
func (d *DB) Setting(ctx context.Context, key string) ([]byte, error) {
	var value []byte
	err := d.queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
	return value, dbError(err)
}

// SetSetting stores value as setting key, replacing any value it had.
func (d *DB) SetSetting(ctx context.Context, key string, value []byte) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			key, value)
		return err
	})
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
	case errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey):
		return fmt.Errorf("%w: %v", errUnique, err)
	}
	return err
}

var errUnique = errors.New("unique constraint violated")

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN) and
// commits it when fn returns nil. Every write goes through here, so that all
// of them queue for the one writer connection for at most writeWait, and
// fail with auth.ErrBusy past it. The wait (for the connection, then for
// SQLite's write lock, which BEGIN IMMEDIATE takes) and the busy failures go
// to the Observer.
func (d *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	wctx, cancel := context.WithTimeout(ctx, d.writeWait)
	defer cancel()
	err := func() error {
		start := time.Now()
		tx, err := d.write.BeginTx(wctx, nil)
		if d.metrics != nil {
			d.metrics.ObserveWriteWait(time.Since(start))
		}
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
		err = fmt.Errorf("%w: waited %v for the writer", auth.ErrBusy, d.writeWait)
	} else {
		err = dbError(err)
	}
	if d.metrics != nil && errors.Is(err, auth.ErrBusy) {
		d.metrics.ObserveWriteBusy()
	}
	return err
}
