package pgtest_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"authql/db/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	return conn
}

// TestURL checks that two URLs name two different, empty databases on
// PostgreSQL 15 or later.
func TestURL(t *testing.T) {
	a, b := pgtest.URL(t), pgtest.URL(t)
	if a == b {
		t.Fatalf("URL returned %s twice", a)
	}
	ca, cb := connect(t, a), connect(t, b)
	ctx := t.Context()

	var version string
	if err := ca.QueryRow(ctx, "SHOW server_version_num").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.Atoi(version); err != nil || n < 150000 {
		t.Errorf("server_version_num = %q, want >= 150000", version)
	}

	var nameA, nameB string
	if err := ca.QueryRow(ctx, "SELECT current_database()").Scan(&nameA); err != nil {
		t.Fatal(err)
	}
	if err := cb.QueryRow(ctx, "SELECT current_database()").Scan(&nameB); err != nil {
		t.Fatal(err)
	}
	if nameA == nameB {
		t.Fatalf("both URLs connect to database %s", nameA)
	}

	for _, c := range []*pgx.Conn{ca, cb} {
		var tables int
		err := c.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
		if err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("new database has %d tables, want none", tables)
		}
	}
	if _, err := ca.Exec(ctx, "CREATE TABLE widgets (id int)"); err != nil {
		t.Fatal(err)
	}
	var inA, inB bool
	if err := ca.QueryRow(ctx, "SELECT to_regclass('widgets') IS NOT NULL").Scan(&inA); err != nil {
		t.Fatal(err)
	}
	if err := cb.QueryRow(ctx, "SELECT to_regclass('widgets') IS NOT NULL").Scan(&inB); err != nil {
		t.Fatal(err)
	}
	if !inA || inB {
		t.Errorf("table widgets made in %s: there %v, in %s %v; want true, false", nameA, inA, nameB, inB)
	}
}

// TestParallel has parallel tests race for the cluster's start.
func TestParallel(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			if err := connect(t, pgtest.URL(t)).Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDropped checks that a test's database goes when the test does, even
// with a connection still open.
func TestDropped(t *testing.T) {
	var url string
	t.Run("use", func(t *testing.T) {
		url = pgtest.URL(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn // left open on purpose: the drop must not wait for it
	})
	if url == "" {
		t.Skip("no database was made")
	}
	_, err := pgx.Connect(t.Context(), url)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		t.Errorf("connecting to a dropped database: got %v, want SQLSTATE 3D000", err)
	}
}
