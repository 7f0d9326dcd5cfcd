// Package postgres stores authql's users, sessions, keys and throttling
// state in PostgreSQL (15 or newer) through pgx's connection pool. Any
// number of authql instances may share one database: every rule that must
// hold across them is a conditional statement or a row lock inside one
// transaction at READ COMMITTED, and the few transactions that PostgreSQL
// may still abort (deadlocks, serialization failures) are retried.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"authql/auth"
	"authql/db"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the pool. The zero value means the defaults.
type Options struct {
	// Wait bounds how long a query waits for a connection of the pool,
	// and for a row or table lock that another transaction holds (the
	// lock_timeout of every connection, unless the URL sets one); default
	// 5s. Past it, the query fails with auth.ErrBusy, which clients get as
	// 503 with Retry-After, as SQLite's busy writer does. The pool's size
	// is the URL's pool_max_conns (pgx's default: the larger of 4 and the
	// CPUs).
	Wait time.Duration
	// MustExist refuses a database without authql's tables: Open fails
	// with ErrNoSchema instead of creating them.
	MustExist bool
	// Metrics is told how long each write waited for a connection, and of
	// each write that gave up busy; nil means no metrics.
	Metrics db.Observer
}

// ErrNoSchema is returned by Open with Options.MustExist when the database
// has no authql tables.
var ErrNoSchema = errors.New("no authql tables in the database")

// DB is an open authql database on PostgreSQL.
type DB struct {
	pool    *pgxpool.Pool
	wait    time.Duration
	metrics db.Observer
}

var (
	_ db.Database        = (*DB)(nil)
	_ auth.ThrottleStore = (*DB)(nil)
)

// IsURL reports whether s is a PostgreSQL connection URL, the form
// DATABASE_URL takes.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://…), checks that the
// server is PostgreSQL 15 or newer, and applies the migrations it lacks.
func Open(ctx context.Context, url string, opts ...Options) (*DB, error) {
	o := Options{Wait: 5 * time.Second}
	for _, opt := range opts {
		if opt.Wait > 0 {
			o.Wait = opt.Wait
		}
		o.MustExist = o.MustExist || opt.MustExist
		if opt.Metrics != nil {
			o.Metrics = opt.Metrics
		}
	}
	if !IsURL(url) {
		return nil, errors.New("the database URL must start with postgres:// or postgresql://")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("the database URL is not a valid PostgreSQL connection URL")
	}
	for param, value := range map[string]string{
		"lock_timeout": fmt.Sprint(o.Wait.Milliseconds()),
		// An instance that stops between two statements of a transaction
		// (a paused VM, a partition) would hold its row locks until TCP
		// gives up on it, hours later; authql's transactions never idle.
		"idle_in_transaction_session_timeout": fmt.Sprint(idleInTransaction.Milliseconds()),
	} {
		if _, set := cfg.ConnConfig.RuntimeParams[param]; !set {
			cfg.ConnConfig.RuntimeParams[param] = value
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d := &DB{pool: pool, wait: o.Wait, metrics: o.Metrics}
	if err := d.open(ctx, o.MustExist); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", describe(cfg), err)
	}
	return d, nil
}

// idleInTransaction is how long PostgreSQL lets a transaction of authql's
// sit idle before it ends the session and frees its locks.
const idleInTransaction = 10 * time.Second

// describe names the database of cfg for messages, without its password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %q on %s:%d as %s", c.Database, c.Host, c.Port, c.User)
}

// Describe names the database at url for messages: its name, host, port
// and user, never a password (which a URL may carry in its user part or in
// its query).
func Describe(url string) string {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return "(an invalid DATABASE_URL)"
	}
	return describe(cfg)
}

func (d *DB) open(ctx context.Context, mustExist bool) error {
	var version int
	if err := d.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return err
	}
	if version < 150000 {
		return fmt.Errorf("PostgreSQL %d.%d is too old: authql needs 15 or newer", version/10000, version%10000)
	}
	if mustExist {
		var exists bool
		if err := d.pool.QueryRow(ctx, `SELECT to_regclass('users') IS NOT NULL`).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: start the server once, or run 'authql migrate', to create them", ErrNoSchema)
		}
	}
	return d.migrate(ctx)
}

// migrate applies the embedded migrations under goose's advisory lock, so
// that instances starting together apply each migration once.
func (d *DB) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(d.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, dir,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

// Stats returns the pool's statistics (the load benchmark prints the
// connections in use).
func (d *DB) Stats() *pgxpool.Stat { return d.pool.Stat() }

// Ping checks that the database answers a query.
func (d *DB) Ping(ctx context.Context) error {
	return d.read(ctx, func(ctx context.Context, c *pgxpool.Conn) error { return c.Ping(ctx) })
}

// detach returns ctx without its cancellation, keeping its deadline if it
// has one (a health check's). An operation runs to its end once it has
// begun, as the SQLite adapter's reads do: cancelling a query midway makes
// pgx close the connection, so a client that hangs up would cost the pool
// a connection and PostgreSQL a new backend, and turn into an internal
// error. Without a deadline the context is never done, which also spares
// pgx watching it during each query; lock_timeout,
// idle_in_transaction_session_timeout and TCP keep-alives bound what a
// query may wait for.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(context.WithoutCancel(ctx), deadline)
	}
	return context.WithoutCancel(ctx), func() {}
}

// acquire takes a connection from the pool, waiting at most d.wait for one:
// past that the pool is exhausted and the caller gets auth.ErrBusy.
func (d *DB) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	wctx, cancel := context.WithTimeout(ctx, d.wait)
	defer cancel()
	c, err := d.pool.Acquire(wctx)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%w: waited %v for a connection of the pool: %v", auth.ErrBusy, d.wait, err)
	}
	return c, err
}

// read runs fn on a pooled connection, detached from the caller's
// cancellation.
func (d *DB) read(ctx context.Context, fn func(ctx context.Context, c *pgxpool.Conn) error) error {
	ctx, cancel := detach(ctx)
	defer cancel()
	c, err := d.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return dbError(fn(ctx, c))
}

// queryRow runs a read query that returns one row and scans it into dest.
// pgx prepares each query once per connection and then runs it in one
// round trip.
func (d *DB) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return d.read(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, query, args...).Scan(dest...)
	})
}

// maxTxAttempts bounds how often a write that PostgreSQL aborted as a
// deadlock victim or a serialization failure is run again.
const maxTxAttempts = 5

// write runs fn, a write, on a pooled connection, detached from the
// caller's cancellation. A deadlock or a serialization failure (SQLSTATE
// 40P01, 40001) runs it again, after a short random pause, up to
// maxTxAttempts times; then, as when no connection comes free in time, the
// caller gets auth.ErrBusy. fn must therefore be safe to run more than
// once. The wait for a connection and the busy failures go to the Observer.
func (d *DB) write(ctx context.Context, fn func(ctx context.Context, c *pgxpool.Conn) error) error {
	ctx, cancel := detach(ctx)
	defer cancel()
	var err error
	for attempt := range maxTxAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(attempt) * int64(10*time.Millisecond))))
		}
		if err = d.writeOnce(ctx, fn); !retryable(err) {
			break
		}
	}
	if retryable(err) {
		err = fmt.Errorf("%w: %v", auth.ErrBusy, err)
	}
	err = dbError(err)
	if d.metrics != nil && errors.Is(err, auth.ErrBusy) {
		d.metrics.ObserveWriteBusy()
	}
	return err
}

func (d *DB) writeOnce(ctx context.Context, fn func(ctx context.Context, c *pgxpool.Conn) error) error {
	start := time.Now()
	c, err := d.acquire(ctx)
	if d.metrics != nil {
		d.metrics.ObserveWriteWait(time.Since(start))
	}
	if err != nil {
		return err
	}
	defer c.Release()
	return fn(ctx, c)
}

// inTx runs fn in a transaction, as a write (see write), and commits it
// when fn returns nil.
func (d *DB) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return d.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return fn(ctx, tx) })
	})
}

// exec runs one statement, a write, on its own (no BEGIN and COMMIT round
// trips) and returns how many rows it changed.
func (d *DB) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := d.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// execOne runs one statement that must change exactly one row, else
// auth.ErrNotFound.
func (d *DB) execOne(ctx context.Context, query string, args ...any) error {
	n, err := d.exec(ctx, query, args...)
	if err == nil && n != 1 {
		err = auth.ErrNotFound
	}
	return err
}

// retryable reports whether err is PostgreSQL aborting a transaction that
// may succeed if run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

var errUnique = errors.New("unique constraint violated")

// dbError translates driver errors into the auth package's vocabulary.
func dbError(err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return auth.ErrNotFound
	case errors.As(err, &pe) && pe.Code == "23505":
		return fmt.Errorf("%w: %v", errUnique, err)
	case errors.As(err, &pe) && pe.Code == "55P03": // lock_timeout
		return fmt.Errorf("%w: %v", auth.ErrBusy, err)
	}
	return err
}

// txExec runs a statement in tx and returns how many rows it changed.
func txExec(ctx context.Context, tx pgx.Tx, query string, args ...any) (int64, error) {
	tag, err := tx.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

// updateOne runs a statement that must change exactly one row, else
// auth.ErrNotFound.
func updateOne(ctx context.Context, tx pgx.Tx, query string, args ...any) error {
	n, err := txExec(ctx, tx, query, args...)
	if err == nil && n != 1 {
		err = auth.ErrNotFound
	}
	return err
}

// Secret returns the value of setting key, storing generate() first if the
// key has none; every instance gets the first value stored.
func (d *DB) Secret(ctx context.Context, key string, generate func() []byte) ([]byte, error) {
	var value []byte
	err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, generate()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&value)
	})
	return value, err
}

// Setting returns the value of setting key, or auth.ErrNotFound.
func (d *DB) Setting(ctx context.Context, key string) ([]byte, error) {
	var value []byte
	err := d.queryRow(ctx, `SELECT value FROM settings WHERE key = $1`, []any{key}, &value)
	return value, err
}

// SetSetting stores value as setting key, replacing any value it had.
func (d *DB) SetSetting(ctx context.Context, key string, value []byte) error {
	_, err := d.exec(ctx,
		`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		key, value)
	return err
}
