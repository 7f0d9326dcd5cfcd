package authtest

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/db/sqlite"
)

// Config is a service configuration for tests: known secrets, the cheapest
// bcrypt cost, short lifetimes, and clock c.
func Config(c *Clock) auth.Config {
	return auth.Config{
		Secret:            []byte("0123456789abcdef0123456789abcdef"),
		RefreshSecret:     []byte("refresh-derivation-secret-of-32-bytes"),
		Issuer:            "authql-test",
		AccessTokenTTL:    15 * time.Minute,
		RefreshTokenTTL:   24 * time.Hour,
		RefreshReuseGrace: 10 * time.Second,
		BcryptCost:        4,
		Now:               c.Now,
	}
}

// MustOpenDB opens a new database file in a temporary directory, closed when
// the test ends.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "authql.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return store
}

// MustService returns a service over a new database, with Config and a
// clock at a fixed time, and the database and the clock; edit may change
// the configuration first.
func MustService(tb testing.TB, edit ...func(*auth.Config)) (*auth.Service, *sqlite.DB, *Clock) {
	tb.Helper()
	c := NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg := Config(c)
	for _, e := range edit {
		e(&cfg)
	}
	store := MustOpenDB(tb)
	svc, err := auth.NewService(store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return svc, store, c
}

// MustCreateUser creates a user through svc, as the CLI does.
func MustCreateUser(tb testing.TB, svc *auth.Service, username, password string, scopes ...string) *auth.User {
	tb.Helper()
	u, err := svc.CreateUser(context.Background(), auth.NewUser{Username: username, Password: password, Scopes: scopes})
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// Logs collects log lines written by concurrent requests.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
