package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"authql/auth"
	"authql/db/sqlite"
)

// oldUsernameKey is auth.UsernameKey as migrations 1 to 3 stored it.
func oldUsernameKey(username string) string {
	return cases.Fold().String(norm.NFC.String(username))
}

// mustOldDatabase creates a database at path with the SQL migrations up to
// version 3 (the last before the username keys changed) and the users
// named, in that order, under their old keys. It returns their ids.
func mustOldDatabase(tb testing.TB, path string, usernames ...string) []string {
	tb.Helper()
	ctx := context.Background()
	// sqlite.Open refuses a file that others may read; SQLite would create it 0644.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, os.DirFS("migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		tb.Fatal(err)
	}
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	ids := make([]string, len(usernames))
	for i, name := range usernames {
		ids[i] = auth.NewID()
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			ids[i], name, oldUsernameKey(name), []byte("$2a$04$secret-hash-"+ids[i]), 1700000000_000000000+i); err != nil {
			tb.Fatalf("insert %+q: %v", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// storedKeys returns username_key by user id, read straight from the file.
func storedKeys(tb testing.TB, path string) map[string]string {
	tb.Helper()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT id, username_key FROM users`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	keys := map[string]string{}
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			tb.Fatal(err)
		}
		keys[id] = key
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return keys
}

// captureLog sends slog.Default to a buffer until the test ends.
func captureLog(tb testing.TB) *bytes.Buffer {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	tb.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

func TestMigrationRekeysUsernames(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authql.db")
	names := []string{
		"ａｌｉｃｅ",      // 0: fullwidth, created first: gets "alice"
		"alice",      // 1: its old key is the new key of 0: parked on "RENAME <id>"
		"Bob",        // 2: unchanged
		"ＢＯＢ",        // 3: later than 2: keeps its old key "ｂｏｂ"
		"Ｃａｒｏｌ",      // 4: alone: rekeyed to "carol"
		"ALİCE",      // 5: folds to ali + U+0307 + ce, as before; refused by today's rules
		"\u0430lice", // 6: Cyrillic а: its own key, as before; refused by today's rules
		"Straße",     // 7: "strasse", as before
		"dave",       // 8: unchanged
	}
	ids := mustOldDatabase(t, path, names...)
	logs := captureLog(t)

	store := mustOpen(t, path)

	keys := storedKeys(t, path)
	for i, want := range map[int]string{
		0: "alice",
		1: "RENAME " + ids[1],
		2: "bob",
		3: "ｂｏｂ",
		4: "carol",
		5: "ali\u0307ce",
		6: "\u0430lice",
		7: "strasse",
		8: "dave",
	} {
		if got := keys[ids[i]]; got != want {
			t.Errorf("user %d (%+q): username_key = %+q; want %+q", i, names[i], got, want)
		}
	}

	// Logins compare the new key: the earliest user won.
	for _, login := range []string{"alice", "ALICE", "ａｌｉｃｅ"} {
		u, _, err := store.UserByUsername(ctx, auth.UsernameKey(login))
		if err != nil || u.ID != ids[0] {
			t.Errorf("UserByUsername(%q) = %+v, %v; want user %s", login, u, err, ids[0])
		}
	}
	if u, _, err := store.UserByUsername(ctx, auth.UsernameKey("bob")); err != nil || u.ID != ids[2] {
		t.Errorf("UserByUsername(bob) = %+v, %v; want user %s", u, err, ids[2])
	}
	// The later users still exist, under their names, for an operator.
	for _, i := range []int{1, 3} {
		u, _, err := store.UserByID(ctx, ids[i])
		if err != nil || u.Username != names[i] {
			t.Errorf("UserByID(user %d) = %+v, %v; want %+q", i, u, err, names[i])
		}
	}
	// New users are unique under the new key.
	for _, name := range []string{"Alice", "ＡＬＩＣＥ", "BOB", "carol", "straße"} {
		if err := store.CreateUser(ctx, newUser(name), []byte("h")); !errors.Is(err, auth.ErrUsernameTaken) {
			t.Errorf("CreateUser(%q) = %v; want ErrUsernameTaken", name, err)
		}
	}

	log := logs.String()
	for _, want := range []string{
		fmt.Sprintf("user_id=%s later_user_ids=[%s]", ids[0], ids[1]),
		fmt.Sprintf("user_id=%s later_user_ids=[%s]", ids[2], ids[3]),
		fmt.Sprintf("count=2 user_ids=\"[%s %s]\"", ids[5], ids[6]),
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "secret-hash") || strings.Contains(log, "alice") {
		t.Errorf("log shows a hash or a username:\n%s", log)
	}
}

// A second run, as when the server and the CLI migrate one file at once,
// changes nothing.
func TestMigrationRekeyingTwiceChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authql.db")
	mustOldDatabase(t, path, "ａｌｉｃｅ", "alice", "Bob", "ＢＯＢ", "Ｃａｒｏｌ", "dave")
	captureLog(t)
	first, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	want := storedKeys(t, path)

	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	// Version 4 and those after it, which goose would otherwise call
	// applied out of order; they are idempotent too.
	if _, err := raw.Exec(`DELETE FROM goose_db_version WHERE version_id >= 4`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	mustOpen(t, path)
	if got := storedKeys(t, path); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("keys after a second run = %+q; want %+q", got, want)
	}
}

// Thousands of users, a few of them colliding, migrate in one pass.
func TestMigrationRekeysManyUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authql.db")
	var names []string
	for i := range 5000 {
		names = append(names, fmt.Sprintf("user%d", i))
		if i%500 == 0 {
			// The fullwidth twin of a user created just before it.
			names = append(names, strings.Map(func(r rune) rune {
				if r >= '!' && r <= '~' {
					return r - '!' + '！'
				}
				return r
			}, fmt.Sprintf("user%d", i)))
		}
	}
	ids := mustOldDatabase(t, path, names...)
	logs := captureLog(t)
	mustOpen(t, path)
	keys := storedKeys(t, path)
	seen := map[string]bool{}
	for i, id := range ids {
		key := keys[id]
		if seen[key] {
			t.Fatalf("key %q twice", key)
		}
		seen[key] = true
		want := auth.UsernameKey(names[i])
		if strings.HasPrefix(names[i], "ｕ") {
			want = oldUsernameKey(names[i])
		}
		if key != want {
			t.Errorf("user %+q: key %+q; want %+q", names[i], key, want)
		}
	}
	if n := strings.Count(logs.String(), "later_user_ids"); n != 10 {
		t.Errorf("%d collisions logged; want 10:\n%s", n, logs)
	}
}
