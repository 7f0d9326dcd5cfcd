package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"authql/auth"
)

// cacheFixture is a database file with a user and a session, opened twice:
// d, whose cache is under test, and other, a second handle as the CLI's.
type cacheFixture struct {
	d, other *DB
	path     string
	user     *auth.User
	session  *auth.Session
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "authql.db")
	open := func() *DB {
		d, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	f := &cacheFixture{d: open(), path: path}
	f.other = open()
	if f.d.cache == nil {
		t.Fatal("no session cache on a WAL database")
	}
	now := time.Now()
	f.user = &auth.User{ID: auth.NewID(), Username: "alice", Scopes: []string{"a"}, CreatedAt: now}
	if err := f.other.CreateUser(ctx, f.user, []byte("h")); err != nil {
		t.Fatal(err)
	}
	f.session = &auth.Session{ID: auth.NewID(), UserID: f.user.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := f.other.CreateSession(ctx, auth.NewSession{Session: f.session, RefreshHash: auth.HashToken(f.session.ID)}); err != nil {
		t.Fatal(err)
	}
	return f
}

// lookup runs SessionWithUser on d and says whether the cache answered.
func (f *cacheFixture) lookup(t *testing.T) (*auth.Session, *auth.User, bool) {
	t.Helper()
	hits, _ := f.d.SessionCacheStats()
	s, u, err := f.d.SessionWithUser(context.Background(), f.session.ID)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := f.d.SessionCacheStats()
	return s, u, after > hits
}

// Served from the cache until another handle commits; the next lookup
// reads the change.
func TestCacheAnswersUntilAnyCommit(t *testing.T) {
	f := newCacheFixture(t)
	if _, _, hit := f.lookup(t); hit {
		t.Fatal("the first lookup was a hit")
	}
	if _, _, hit := f.lookup(t); !hit {
		t.Fatal("a repeated lookup with no commit between read the database")
	}
	if err := f.other.RevokeSession(context.Background(), f.user.ID, f.session.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, _, hit := f.lookup(t)
	if hit || s.RevokedAt == nil {
		t.Errorf("after another handle's revocation: hit %v, revoked %v; want a read that sees it", hit, s.RevokedAt)
	}
	// A commit that changes nothing this session depends on also turns
	// the answers stale: the cache cannot tell.
	if err := f.other.SetSetting(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, _, hit := f.lookup(t); hit {
		t.Error("a lookup after an unrelated commit was a hit")
	}
}

// A commit while an answer is being filled, between reading the stamp and
// reading the row or between reading the row and keeping it, never leaves
// a stale answer served: the answer is stamped with the header from before
// the read, which the commit changed.
func TestFillRacingCommitIsNeverStale(t *testing.T) {
	ctx := context.Background()
	for _, pause := range []string{"before the read", "after the read"} {
		t.Run(pause, func(t *testing.T) { testFillRacingCommit(t, ctx, pause) })
	}
}

func testFillRacingCommit(t *testing.T, ctx context.Context, pause string) {
	for _, tc := range []struct {
		name   string
		commit func(f *cacheFixture) error
		stale  func(s *auth.Session, u *auth.User) bool
	}{
		{"revoke", func(f *cacheFixture) error { return f.other.RevokeSession(ctx, f.user.ID, f.session.ID, time.Now()) },
			func(s *auth.Session, _ *auth.User) bool { return s.RevokedAt == nil }},
		{"disable", func(f *cacheFixture) error {
			_, err := f.other.SetUserDisabled(ctx, f.user.ID, true, time.Now(), nil)
			return err
		},
			func(_ *auth.Session, u *auth.User) bool { return !u.Disabled }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			paused := false
			hook := &f.d.cache.beforeRead
			if pause == "after the read" {
				hook = &f.d.cache.afterRead
			}
			*hook = func() {
				*hook, paused = nil, true
				if err := tc.commit(f); err != nil {
					t.Error(err)
				}
			}
			f.lookup(t) // stamps, reads and keeps, with a commit in the pause
			if !paused {
				t.Fatal("the lookup did not pause between the stamp and the read")
			}
			for range 3 {
				if s, u, _ := f.lookup(t); tc.stale(s, u) {
					t.Fatal("a stale answer was served after the commit")
				}
			}
		})
	}
}

// With the header in doubt, every lookup reads the database, and stays
// exact.
func TestHeaderInDoubtMeansARead(t *testing.T) {
	f := newCacheFixture(t)
	f.d.cache.readStamp = func([]byte) (walStamp, bool) { return walStamp{}, false }
	for range 3 {
		if _, _, hit := f.lookup(t); hit {
			t.Fatal("a lookup was a hit with the header in doubt")
		}
	}
	if _, err := f.other.SetUserDisabled(context.Background(), f.user.ID, true, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if _, u, _ := f.lookup(t); !u.Disabled {
		t.Error("a lookup missed the disabling")
	}
	if hits, misses := f.d.SessionCacheStats(); hits != 0 || misses != 0 {
		t.Errorf("stats %d/%d: the cache was consulted", hits, misses)
	}
}

// The header as SQLite (the go-sqlite3 in go.mod) writes it: trusted, its
// iChange moving by one per commit from another connection and not at all
// for reads; and every kind of doubt refused.
func TestWALStampFromSQLite(t *testing.T) {
	f := newCacheFixture(t)
	stamp := func() walStamp {
		t.Helper()
		s, ok := readWALStamp(f.d.cache.mem)
		if !ok {
			t.Fatal("the header SQLite wrote is not trusted")
		}
		return s
	}
	before := stamp()
	if _, _, err := f.other.UserByID(context.Background(), f.user.ID); err != nil {
		t.Fatal(err)
	}
	if stamp() != before {
		t.Error("a read changed the header")
	}
	for i := range 3 {
		if err := f.other.SetSetting(context.Background(), "k", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if got, want := stamp()[2], before[2]+uint32(i)+1; got != want {
			t.Fatalf("iChange after %d commits: %d; want %d", i+1, got, want)
		}
	}

	good := make([]byte, 96)
	copy(good, f.d.cache.mem[:96])
	for _, tc := range []struct {
		name   string
		break_ func(b []byte)
	}{
		{"copies differ", func(b []byte) { b[48+8]++ }},
		{"checksum wrong", func(b []byte) { b[8]++; b[48+8]++ }},
		{"not initialised", func(b []byte) { b[12], b[48+12] = 0, 0 }},
		{"another version", func(b []byte) {
			binary.NativeEndian.PutUint32(b[0:], 3007001)
			binary.NativeEndian.PutUint32(b[48:], 3007001)
		}},
		{"too short", nil},
	} {
		b := append([]byte(nil), good...)
		if tc.break_ != nil {
			tc.break_(b)
		} else {
			b = b[:90]
		}
		if _, ok := readWALStamp(b); ok {
			t.Errorf("%s: trusted", tc.name)
		}
	}
	if _, ok := readWALStamp(good); !ok {
		t.Error("a copy of the good header is not trusted")
	}
}

// A checkpoint moves the database's pages, not its contents: answers stay
// right across one, and a commit after it is seen.
func TestCheckpointBetweenLookups(t *testing.T) {
	f := newCacheFixture(t)
	f.lookup(t)
	raw, err := sql.Open("sqlite3", "file:"+f.path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	checkpoint := func() {
		t.Helper()
		if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint()
	if s, _, _ := f.lookup(t); s.RevokedAt != nil {
		t.Fatal("wrong answer after a checkpoint")
	}
	if err := f.other.RevokeSession(context.Background(), f.user.ID, f.session.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	checkpoint()
	if s, _, hit := f.lookup(t); hit || s.RevokedAt == nil {
		t.Errorf("after a revocation and a checkpoint: hit %v, revoked %v", hit, s.RevokedAt)
	}
}

// The cache is bounded in bytes: a flood of sessions leaves it within
// maxSessionCacheBytes.
func TestSessionCacheIsBounded(t *testing.T) {
	var current walStamp
	c := &sessionCache{entries: map[string]*cachedSession{},
		readStamp: func([]byte) (walStamp, bool) { return current, true }}
	c.checked.Store(time.Now().Add(time.Hour).UnixNano()) // no file to check
	u := &auth.User{ID: "u", Username: "alice", Scopes: []string{"a"}}
	ids := make([]string, 64) // some sessions come back, under new stamps
	for i := range ids {
		ids[i] = auth.NewID()
	}
	for i := range 3 * maxSessionCacheBytes / 512 {
		current = walStamp{uint32(i / 1000)}
		id := auth.NewID()
		if i%3 == 0 {
			id = ids[i%len(ids)]
		}
		c.put(id, current, &auth.Session{ID: id, UserID: "u"}, u)
		if c.bytes > maxSessionCacheBytes {
			t.Fatalf("%d bytes after %d puts; want at most %d", c.bytes, i+1, maxSessionCacheBytes)
		}
	}
	sum := 0
	for _, e := range c.entries {
		sum += entryBytes(e)
	}
	if sum != c.bytes {
		t.Errorf("the cache counts %d bytes; its entries hold %d", c.bytes, sum)
	}
	// An answer already stale when it is kept is not kept.
	c.put("late", walStamp{12345}, &auth.Session{ID: "late"}, u)
	if c.entries["late"] != nil {
		t.Error("a stale answer was kept")
	}
}

// A header SQLite would trust but with iChange 0 is in doubt: a recovery
// writes that same header whatever committed before it.
func TestZeroChangeCounterIsInDoubt(t *testing.T) {
	f := newCacheFixture(t)
	h := make([]byte, 96)
	copy(h, f.d.cache.mem[:96])
	for c := range 2 {
		binary.NativeEndian.PutUint32(h[c*48+8:], 0)
		var s1, s2 uint32
		for w := 0; w < 10; w += 2 {
			s1 += binary.NativeEndian.Uint32(h[c*48+w*4:]) + s2
			s2 += binary.NativeEndian.Uint32(h[c*48+w*4+4:]) + s1
		}
		binary.NativeEndian.PutUint32(h[c*48+40:], s1)
		binary.NativeEndian.PutUint32(h[c*48+44:], s2)
	}
	if _, ok := readWALStamp(h); ok {
		t.Error("a header with iChange 0 is trusted")
	}
	h[8]++ // iChange 1, checksums now wrong: still refused, for the checksum
	if _, ok := readWALStamp(h); ok {
		t.Error("a header with a wrong checksum is trusted")
	}
}

// After a restart SQLite rebuilds the wal-index with iChange 0: every
// lookup reads until the first commit, then the cache answers again.
func TestRestartReadsUntilTheFirstCommit(t *testing.T) {
	f := newCacheFixture(t)
	if err := f.other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Close(); err != nil { // the last connection: SQLite checkpoints and resets
		t.Fatal(err)
	}
	d, err := Open(context.Background(), f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f.d = d
	for range 2 {
		if _, _, hit := f.lookup(t); hit {
			t.Fatal("a hit under the header of a fresh wal-index")
		}
	}
	if err := d.SetSetting(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	f.lookup(t)
	if _, _, hit := f.lookup(t); !hit {
		t.Error("no hit after the first commit")
	}
}

// A database opened through a symbolic link: SQLite keeps its -wal and
// -shm beside the file the link names, and so does the cache, even with a
// stale -shm (a valid header that never changes) beside the link.
func TestSymlinkedDatabase(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t)
	link := filepath.Join(t.TempDir(), "authql.db")
	if err := os.Symlink(f.path, link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link+"-shm", f.d.cache.mem[:walHeaderMapSize], 0o600); err != nil {
		t.Fatal(err)
	}
	via, err := Open(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { via.Close() })
	if via.cache == nil || via.cache.shm != f.path+"-shm" {
		t.Fatalf("the cache maps %v; want %s", via.cache, f.path+"-shm")
	}
	via.SessionWithUser(ctx, f.session.ID)
	if err := f.other.RevokeSession(ctx, f.user.ID, f.session.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if s, _, err := via.SessionWithUser(ctx, f.session.ID); err != nil || s.RevokedAt == nil {
		t.Errorf("through the link, after a revocation: %+v %v; want it seen", s, err)
	}
}

// A -shm file replaced under the running process (a restore done without
// stopping the server) turns the cache off for good: every lookup reads.
func TestReplacedWALIndexTurnsTheCacheOff(t *testing.T) {
	f := newCacheFixture(t)
	f.lookup(t)
	if _, _, hit := f.lookup(t); !hit {
		t.Fatal("no hit before the replacement")
	}
	// What the check finds after a replacement: another inode at the path.
	orig := f.d.cache.index
	t.Cleanup(func() { f.d.cache.index = orig }) // for Close to let go of the real one
	index := *orig
	index.ino++
	f.d.cache.index = &index
	f.d.cache.checked.Store(0)
	for range 3 {
		if _, _, hit := f.lookup(t); hit {
			t.Fatal("a hit after the -shm file was replaced")
		}
	}
	if !f.d.cache.off.Load() {
		t.Error("the cache is still on")
	}
}

// Without a -shm file to map there is no cache: every lookup reads.
func TestNoWALIndexNoCache(t *testing.T) {
	if c := newSessionCache(filepath.Join(t.TempDir(), "missing.db")); c != nil {
		t.Error("a cache without a -shm file")
	}
	var c *sessionCache
	if _, ok := c.stamp(); ok {
		t.Error("a nil cache trusts a stamp")
	}
}
