package sqlite_test

import (
	"path/filepath"
	"testing"

	"authql/db"
	"authql/db/storetest"
)

// TestConformance runs the suite every adapter passes; a second handle is
// a second process on the same file (the CLI beside the server).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (db.Database, func(t *testing.T) db.Database) {
		path := filepath.Join(t.TempDir(), "authql.db")
		open := func(t *testing.T) db.Database { return mustOpen(t, path) }
		return open(t), open
	})
}
