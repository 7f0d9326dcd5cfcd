package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupAndRestore follows the README: back up a live server with the
// CLI, then restore the copy in place of the database, and find the users
// and their passwords as they were at the backup.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "authql.db")
	env := map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"}
	_, stop := startRun(t, env)
	if _, errOut, code := cliRun(t, dbPath, alicePassword, "user", "add", "-username", "alice"); code != 0 {
		t.Fatal(errOut)
	}

	backup := filepath.Join(dir, "backup.db")
	out, errOut, code := cliRun(t, dbPath, "", "backup", "-o", backup)
	if code != 0 || !strings.Contains(out, "backed up "+dbPath+" to "+backup) {
		t.Fatalf("backup: exit %d %q %q", code, out, errOut)
	}
	wantPrivate(t, backup)
	if _, errOut, code := cliRun(t, dbPath, "", "backup", "-o", backup); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("a second backup to the same file: exit %d %q; want a refusal", code, errOut)
	}
	if _, errOut, code := cliRun(t, dbPath, "", "backup"); code != 2 || !strings.Contains(errOut, "-o is required") {
		t.Errorf("backup without -o: exit %d %q", code, errOut)
	}
	// A user added after the backup is not in it.
	if _, errOut, code := cliRun(t, dbPath, alicePassword, "user", "add", "-username", "bob"); code != 0 {
		t.Fatal(errOut)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Restore: the server stopped, the database and its -wal and -shm
	// replaced by the copy.
	for _, f := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.Rename(backup, dbPath); err != nil {
		t.Fatal(err)
	}
	base, _ := startRun(t, env)
	for user, want := range map[string]int{"alice": http.StatusOK, "bob": http.StatusBadRequest} {
		resp, err := http.PostForm(base+"/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {alicePassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("login of %s after the restore: %d; want %d (bob was added after the backup)", user, resp.StatusCode, want)
		}
	}
}
