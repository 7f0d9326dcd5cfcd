package postgres_test

import (
	"context"
	"os"
	"testing"

	"authql/db"
	"authql/db/pgtest"
	"authql/db/postgres"
	"authql/db/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// mustOpen opens the database at url, closing it when the test ends.
func mustOpen(tb testing.TB, url string, opts ...postgres.Options) *postgres.DB {
	tb.Helper()
	d, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// TestConformance runs the suite every adapter passes; a second handle is
// a second instance on the same database.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (db.Database, func(t *testing.T) db.Database) {
		url := pgtest.URL(t)
		open := func(t *testing.T) db.Database { return mustOpen(t, url) }
		return open(t), open
	})
}
