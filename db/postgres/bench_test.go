package postgres

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"authql/auth"
	"authql/db/pgtest"
)

// BenchmarkSessionWithUser is the query every authenticated request runs,
// in each of pgx's query modes. The default, cache_statement, prepares it
// once per connection and then binds and executes the prepared statement;
// cache_describe and exec have the server parse and plan it every time;
// simple_protocol also interpolates the id on the client; describe_exec
// asks for the statement's description in a round trip of its own. serial
// is the latency of one caller, parallel the throughput of GOMAXPROCS
// callers.
// round-trips/op counts the client's writes to the server per call: pgx
// writes the messages of one round trip at once.
func BenchmarkSessionWithUser(b *testing.B) {
	ctx := context.Background()
	dbURL := pgtest.URL(b)
	setup, err := Open(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	u := &auth.User{ID: auth.NewID(), Username: "alice", Scopes: []string{"a", "b"}, CreatedAt: time.Unix(1700000000, 0).UTC()}
	if err := setup.CreateUser(ctx, u, []byte("h")); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := setup.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID)}); err != nil {
		b.Fatal(err)
	}

	read := func(d *DB) error {
		_, _, err := d.SessionWithUser(ctx, s.ID)
		return err
	}
	for _, mode := range []string{"cache_statement", "cache_describe", "exec", "simple_protocol", "describe_exec"} {
		// One pool per mode, kept across the runs of b.N, so that the
		// statements prepared on its connections stay prepared.
		d, writes := openCounting(b, dbURL, mode)
		if err := read(d); err != nil { // prepares, in the caching modes
			b.Fatal(err)
		}
		measure := func(b *testing.B, loop func()) {
			b.ReportAllocs()
			b.ResetTimer()
			writes.Store(0)
			loop()
			b.ReportMetric(float64(writes.Load())/float64(b.N), "round-trips/op")
		}
		b.Run(mode+"/serial", func(b *testing.B) {
			measure(b, func() {
				for b.Loop() {
					if err := read(d); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(mode+"/parallel", func(b *testing.B) {
			measure(b, func() {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := read(d); err != nil {
							b.Error(err) // not Fatal: this is not the benchmark's goroutine
							return
						}
					}
				})
			})
		})
	}
}

// openCounting opens the database at dbURL, which Open has migrated, with
// pgx's default_query_exec_mode mode, counting the writes to the server of
// every pooled connection: Open has no way to wrap them.
func openCounting(tb testing.TB, dbURL, mode string) (*DB, *atomic.Int64) {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("default_query_exec_mode", mode)
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		tb.Fatal(err)
	}
	writes := new(atomic.Int64)
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, writes}, nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return &DB{pool: pool, wait: 5 * time.Second}, writes
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}
