package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Backup writes a consistent copy of the live database to a new file at
// path, readable by its owner only (mode 0600: the copy holds password
// hashes and secrets, as the database does). It runs SQLite's VACUUM INTO,
// which reads the database in one read transaction: the copy is one
// snapshot of it even while other connections, in this process or another,
// go on writing, and in WAL mode those writes do not wait for the copy.
// The copy is a single file, without -wal or -shm, compacted, and synced to
// disk before Backup returns.
//
// Backup never overwrites: when path exists it returns an error wrapping
// fs.ErrExist that names the path. On any other failure it removes the
// partial copy. Cancelling ctx interrupts the copy.
func (d *DB) Backup(ctx context.Context, path string) error {
	if path == "" {
		return errors.New("backup: the path must name a file")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	// VACUUM INTO writes into an empty file it finds, keeping its mode;
	// created here, with O_EXCL, the file is private from the start and an
	// existing file is never touched.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("backup: %s already exists; refusing to overwrite it (choose a new file name): %w", abs, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("backup: create %s: %w", abs, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(abs)
		return fmt.Errorf("backup: create %s: %w", abs, err)
	}
	if err := d.vacuumInto(ctx, abs); err != nil {
		os.Remove(abs)
		return fmt.Errorf("backup to %s: %w", abs, err)
	}
	return nil
}

// vacuumInto copies the database into the empty file at abs, an absolute
// path (a relative one starting with "file:" would be read as a URI), and
// syncs the copy and its directory: SQLite writes a VACUUM INTO target
// without syncing it.
//
// The copy runs on a connection of its own: the read pool's connections
// are query-only, which refuses VACUUM INTO, and the writer's would hold
// back every write until the copy ends. VACUUM INTO only reads the source,
// in one read transaction, so it takes no write lock.
func (d *DB) vacuumInto(ctx context.Context, abs string) error {
	source, err := d.file(ctx)
	if err != nil {
		return err
	}
	conn, err := sql.Open("sqlite3", dsn(source, 5*time.Second, url.Values{"_txlock": {"deferred"}}))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		return dbError(err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(abs))
	if err != nil {
		return err
	}
	return errors.Join(dir.Sync(), dir.Close())
}
