package main

import (
	"context"
	"fmt"
	"path/filepath"

	"authql/db"
	"authql/db/postgres"
	"authql/db/sqlite"
)

// openDatabase opens the database that o names: PostgreSQL with
// DATABASE_URL, else the SQLite file DB_PATH.
func openDatabase(ctx context.Context, o storeOptions) (db.Database, error) {
	if o.url != "" {
		d, err := postgres.Open(ctx, o.url, o.postgres)
		if err != nil {
			return nil, fmt.Errorf("database (DATABASE_URL): %w", err)
		}
		return d, nil
	}
	d, err := sqlite.Open(ctx, o.path, o.sqlite)
	if err != nil {
		return nil, fmt.Errorf("database (DB_PATH): %w", err)
	}
	return d, nil
}

// databaseName names the database o opens, for messages: the SQLite file's
// absolute path, or the PostgreSQL database, host and user.
func databaseName(o storeOptions) string {
	if o.url != "" {
		return postgres.Describe(o.url)
	}
	abs, err := filepath.Abs(o.path)
	if err != nil {
		return o.path
	}
	return abs
}
