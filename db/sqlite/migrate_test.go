package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pressly/goose/v3"

	"authql/db/sqlite"
)

// TestConcurrentUpgradesAllSucceed: processes that open an old database at
// the same moment (the server and a CLI command) each apply or find applied
// every migration, including those that ALTER a table.
func TestConcurrentUpgradesAllSucceed(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "authql.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := goose.NewProvider(goose.DialectSQLite3, raw, os.DirFS("migrations"), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		raw.Close()

		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				store, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Errorf("round %d, opener %d: %v", round, i, err)
					return
				}
				store.Close()
			})
		}
		wg.Wait()
	}
}
