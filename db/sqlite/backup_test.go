package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"authql/auth"
)

// TestBackupWhileWriting backs up a database while another goroutine keeps
// creating users, and checks the copy: a private file on its own (no -wal),
// intact, holding every user committed before the backup began, and
// usable as a database.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := mustOpen(t, filepath.Join(dir, "authql.db"))
	const before = 200
	for i := range before {
		if err := store.CreateUser(ctx, newUser(fmt.Sprintf("before%03d", i)), []byte("hash")); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	var written atomic.Int64
	var writeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := store.CreateUser(ctx, newUser(fmt.Sprintf("during%05d", i)), []byte("hash")); err != nil {
				writeErr = err
				return
			}
			written.Add(1)
		}
	})
	for written.Load() < 10 { // the writer is going
		runtime.Gosched()
	}
	backup := filepath.Join(dir, "backup.db")
	err := store.Backup(ctx, backup)
	atStop := written.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if writeErr != nil {
		t.Fatalf("a write beside the backup failed: %v", writeErr)
	}
	t.Logf("%d users written beside the backup", atStop)

	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("backup mode = %04o; want 0600", perm)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(backup + suffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s beside the backup: %v; want none, the copy is one file", suffix, err)
		}
	}

	copyDB, err := sql.Open("sqlite3", "file:"+backup+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	var check string
	if err := copyDB.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v; want ok", check, err)
	}
	var beforeRows, duringRows int64
	if err := copyDB.QueryRow(`SELECT count(*) FROM users WHERE username LIKE 'before%'`).Scan(&beforeRows); err != nil {
		t.Fatal(err)
	}
	if err := copyDB.QueryRow(`SELECT count(*) FROM users WHERE username LIKE 'during%'`).Scan(&duringRows); err != nil {
		t.Fatal(err)
	}
	if beforeRows != before || duringRows < 10 || duringRows > atStop {
		t.Errorf("the copy has %d users from before and %d written beside it; want %d and 10..%d", beforeRows, duringRows, before, atStop)
	}
	copyDB.Close()

	// The copy is a database authql opens as it is.
	restored := mustOpen(t, backup)
	if _, _, err := restored.UserByUsername(ctx, auth.UsernameKey("before007")); err != nil {
		t.Errorf("a user in the restored copy: %v", err)
	}
}

// TestBackupNeverOverwrites: a path that exists, a file with data or an
// empty one, is refused with an error naming it, and left as it was.
func TestBackupNeverOverwrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := mustOpen(t, filepath.Join(dir, "authql.db"))
	if err := store.CreateUser(ctx, newUser("alice"), []byte("hash")); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, "first.db")
	if err := store.Backup(ctx, first); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{first, empty} {
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		err = store.Backup(ctx, path)
		if !errors.Is(err, fs.ErrExist) || !strings.Contains(fmt.Sprint(err), path) {
			t.Errorf("Backup over %s = %v; want fs.ErrExist naming the path", filepath.Base(path), err)
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
			t.Errorf("Backup changed %s, which it refused", filepath.Base(path))
		}
	}
}

// TestBackupFailureLeavesNoFile: a copy that fails midway (here, into a
// directory that does not exist, and with a cancelled context) leaves no
// partial file behind.
func TestBackupFailureLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	store := mustOpen(t, filepath.Join(dir, "authql.db"))
	if err := store.Backup(context.Background(), filepath.Join(dir, "missing", "backup.db")); err == nil {
		t.Error("Backup into a missing directory succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cancelled := filepath.Join(dir, "cancelled.db")
	if err := store.Backup(ctx, cancelled); err == nil {
		t.Error("Backup with a cancelled context succeeded")
	}
	if _, err := os.Stat(cancelled); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed backup left %s: %v", cancelled, err)
	}
}
