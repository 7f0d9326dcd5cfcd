package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/sqlite"
)

// The session cache (db/sqlite/sessioncache.go) answers the bearer lookup
// while the wal-index header is what it was when the answer was read. These
// tests hold it to its promise from the outside: whatever commits, in this
// process or in a CLI subprocess, and whether or not a checkpoint rewrites
// the WAL in between, the very next request sees it. There are no sleeps,
// retries or polls: one request after the change, and it must be right.
// Each request's effect on the cache's counters is read too, so that a
// right answer shows the invalidation rather than luck (an answer read from
// the database because the entry was, by chance, not there).

// exactnessFixture is a fresh server with alice logged in twice (the
// session under test and another one, for changes made from a session of
// her own) and an administrator logged in.
type exactnessFixture struct {
	ta    *testApp
	alice *auth.User
	// tok is the session under test; other is alice's second session.
	tok, other authtest.Tokens
	admin      authtest.Tokens
	// conn is a connection of its own to the database, for checkpoints;
	// nil until checkpoint opens it.
	conn *sql.DB
}

// meAnswer is what one me request got, and what it did to the cache.
type meAnswer struct {
	status int
	resp   authtest.GraphQLResponse
	// hits and misses are how much the cache's counters moved.
	hits, misses int64
}

// me runs { me { username scopes } } with token and reads the cache's
// counters on both sides of it.
func (f *exactnessFixture) me(t *testing.T, token string) meAnswer {
	t.Helper()
	hits, misses := f.stats(t)
	resp, body := f.ta.graphql(token, `{ me { username scopes } }`, nil)
	a := meAnswer{status: resp.StatusCode, resp: body}
	h, m := f.stats(t)
	a.hits, a.misses = h-hits, m-misses
	return a
}

// stats returns the session cache's counters.
func (f *exactnessFixture) stats(t *testing.T) (hits, misses int64) {
	t.Helper()
	d, ok := f.ta.app.db.(*sqlite.DB)
	if !ok {
		t.Fatalf("the test app's database is a %T, not SQLite", f.ta.app.db)
	}
	return d.SessionCacheStats()
}

// wantUser checks that a is alice's me with scopes.
func (a meAnswer) wantUser(t *testing.T, scopes []string) {
	t.Helper()
	if a.status != http.StatusOK || len(a.resp.Errors) != 0 {
		t.Fatalf("me: %d %+v; want alice", a.status, a.resp)
	}
	var me struct {
		Username string
		Scopes   []string
	}
	a.resp.Decode(t, "me", &me)
	if me.Username != "alice" || !slices.Equal(me.Scopes, scopes) {
		t.Errorf("me = %+v; want alice with scopes %q", me, scopes)
	}
}

// wantRefused checks that a is the refusal of a bearer token that is no
// longer valid (README, "Error codes").
func (a meAnswer) wantRefused(t *testing.T) {
	t.Helper()
	if a.status != http.StatusUnauthorized {
		t.Fatalf("me: %d %+v; want 401", a.status, a.resp)
	}
	if code := a.resp.Code(t); code != "UNAUTHENTICATED" {
		t.Errorf("me refused with %q; want UNAUTHENTICATED", code)
	}
}

// wantHit checks that the request was answered by the cache alone.
func (a meAnswer) wantHit(t *testing.T) {
	t.Helper()
	if a.hits != 1 || a.misses != 0 {
		t.Errorf("cache hits +%d, misses +%d; want a hit", a.hits, a.misses)
	}
}

// wantMiss checks that the request read the database: the cache saw the
// lookup, and did not answer it.
func (a meAnswer) wantMiss(t *testing.T) {
	t.Helper()
	if a.hits != 0 || a.misses != 1 {
		t.Errorf("cache hits +%d, misses +%d; want a miss", a.hits, a.misses)
	}
}

// checkpoint runs PRAGMA wal_checkpoint(mode) on a connection that is not
// the server's, as another process would, and checks that it did all of
// its work: a checkpoint that gave up would leave the WAL as it was, and
// the cases with one would test nothing more. PASSIVE copies every frame
// back into the database; TRUNCATE does too, then empties the WAL so that
// the next commit restarts it.
func (f *exactnessFixture) checkpoint(t *testing.T, mode string) {
	t.Helper()
	if f.conn == nil {
		conn, err := sql.Open("sqlite3", "file:"+f.ta.dbPath+"?_busy_timeout=5000")
		if err != nil {
			t.Fatal(err)
		}
		conn.SetMaxOpenConns(1)
		t.Cleanup(func() { conn.Close() })
		f.conn = conn
	}
	var busy, log, done int
	if err := f.conn.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || log != done {
		t.Fatalf("wal_checkpoint(%s) = %d %d %d; want every frame checkpointed", mode, busy, log, done)
	}
	if mode == "TRUNCATE" {
		if fi, err := os.Stat(f.ta.dbPath + "-wal"); err != nil || fi.Size() != 0 {
			t.Fatalf("the WAL after wal_checkpoint(TRUNCATE): %v, %v; want it empty", fi, err)
		}
	}
}

// cli runs the real binary against the fixture's database, as an operator
// would beside the running server, and fails the test unless it succeeds.
func (f *exactnessFixture) cli(t *testing.T, stdin string, args ...string) {
	t.Helper()
	if out, errOut, code := cliRun(t, f.ta.dbPath, stdin, args...); code != 0 {
		t.Fatalf("authql %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
}

// mutate runs a GraphQL mutation with token and fails the test on any
// error.
func (f *exactnessFixture) mutate(t *testing.T, token, query string, vars map[string]any) {
	t.Helper()
	resp, body := f.ta.graphql(token, query, vars)
	if resp.StatusCode != http.StatusOK || len(body.Errors) != 0 {
		t.Fatalf("%s: %d %+v", query, resp.StatusCode, body)
	}
}

// revoke posts form to /revoke without client authentication: the tokens
// it revokes were issued to the first-party client, which has none.
func (f *exactnessFixture) revoke(t *testing.T, form url.Values) {
	t.Helper()
	resp, body := authtest.PostForm(t, f.ta.Client(), f.ta.URL+"/revoke", form, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/revoke: %d %s", resp.StatusCode, body)
	}
}

// newExactnessFixture starts a server and logs alice in, through client
// "app" when viaClient (registered in-process: a public client with every
// grant), and the administrator.
func newExactnessFixture(t *testing.T, viaClient bool) *exactnessFixture {
	t.Helper()
	f := &exactnessFixture{ta: newTestApp(t)}
	f.alice = f.ta.addUser("alice", alicePassword, "users:read")
	f.ta.addUser("root", alicePassword, "users:read", "users:write")
	if viaClient {
		if _, err := f.ta.app.service.RegisterClient(context.Background(), auth.NewClient{ID: "app"}); err != nil {
			t.Fatal(err)
		}
		form := authtest.PasswordGrant("alice", alicePassword)
		form.Set("client_id", "app")
		f.tok = f.token(t, form)
	} else {
		f.tok = f.ta.login("alice", alicePassword)
	}
	f.other = f.ta.login("alice", alicePassword)
	f.admin = f.ta.login("root", alicePassword)
	return f
}

// token runs a grant at /token and fails the test unless it succeeds.
func (f *exactnessFixture) token(t *testing.T, form url.Values) authtest.Tokens {
	t.Helper()
	resp, body := f.ta.postToken(form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/token: %d %s", resp.StatusCode, body)
	}
	var tok authtest.Tokens
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkpoints are the points around a change at which the exactness cases
// run a TRUNCATE checkpoint, which rewrites the wal-index header without a
// commit (new salts, no frames) and restarts the WAL for the next commit.
var checkpoints = []struct {
	name string
	// beforeReads: the cached answer is stamped with an empty WAL
	// (mxFrame 0), and the change's commit is the WAL's first.
	// beforeChange: the header moves between the cached answer and the
	// change. afterChange: the change's frames are back in the database and
	// the WAL is empty again when the next request comes.
	beforeReads, beforeChange, afterChange bool
}{
	{name: "no checkpoint"},
	{name: "checkpoint before reads", beforeReads: true},
	{name: "checkpoint before change", beforeChange: true},
	{name: "checkpoint after change", afterChange: true},
	// Stamped with an empty WAL, and an empty WAL again at the next
	// request: mxFrame is 0 in both headers, and a stamp that kept only
	// the WAL's length would serve the stale answer.
	{name: "checkpoint before reads and after change", beforeReads: true, afterChange: true},
}

// TestSessionCacheIsExact: a request is answered by the cache; something
// commits that ends alice's session or changes her scopes; the very next
// request is refused, or sees the new scopes, and was not answered by the
// cache. The changes are made by a CLI subprocess, through the server's own
// endpoints, and through the service; each with no checkpoint, and with a
// TRUNCATE checkpoint from another connection at each point around it.
func TestSessionCacheIsExact(t *testing.T) {
	for _, tc := range []struct {
		name      string
		viaClient bool // alice's session under test is through client "app"
		change    func(t *testing.T, f *exactnessFixture)
		// wantScopes are the scopes the next me shows; nil: it is refused.
		wantScopes []string
	}{
		// A real subprocess: the commit is another process's, and only the
		// shared wal-index tells this one.
		{name: "cli user disable", change: func(t *testing.T, f *exactnessFixture) {
			f.cli(t, "", "user", "disable", "-username", "alice")
		}},
		{name: "cli user passwd", change: func(t *testing.T, f *exactnessFixture) {
			f.cli(t, "another good password 42\n", "user", "passwd", "-username", "alice")
		}},
		{name: "cli user scopes cleared", wantScopes: []string{}, change: func(t *testing.T, f *exactnessFixture) {
			f.cli(t, "", "user", "scopes", "-username", "alice", "-scopes", "")
		}},
		{name: "cli user scopes widened", wantScopes: []string{"users:read", "users:write"}, change: func(t *testing.T, f *exactnessFixture) {
			f.cli(t, "", "user", "scopes", "-username", "alice", "-scopes", "users:read,users:write")
		}},
		{name: "cli user delete", change: func(t *testing.T, f *exactnessFixture) {
			f.cli(t, "", "user", "delete", "-username", "alice")
		}},
		{name: "cli client remove", viaClient: true, change: func(t *testing.T, f *exactnessFixture) {
			f.cli(t, "", "client", "remove", "-id", "app")
		}},

		// This process, through its own endpoints.
		{name: "logout", change: func(t *testing.T, f *exactnessFixture) {
			f.mutate(t, f.tok.AccessToken, `mutation { logout }`, nil)
		}},
		{name: "logout of all sessions from another", change: func(t *testing.T, f *exactnessFixture) {
			f.mutate(t, f.other.AccessToken, `mutation { logout(allSessions: true) }`, nil)
		}},
		{name: "revokeSession from another", change: func(t *testing.T, f *exactnessFixture) {
			_, body := f.ta.graphql(f.other.AccessToken, `{ me { sessions { id current } } }`, nil)
			var me struct {
				Sessions []struct {
					ID      string
					Current bool
				}
			}
			body.Decode(t, "me", &me)
			var id string
			for _, s := range me.Sessions {
				if !s.Current {
					id = s.ID
				}
			}
			if len(me.Sessions) != 2 || id == "" {
				t.Fatalf("alice's sessions: %+v; want two", me.Sessions)
			}
			f.mutate(t, f.other.AccessToken, `mutation($id: ID!) { revokeSession(id: $id) }`, map[string]any{"id": id})
		}},
		{name: "changePassword from another session", change: func(t *testing.T, f *exactnessFixture) {
			f.mutate(t, f.other.AccessToken, `mutation($p: String!) { changePassword(currentPassword: $p, newPassword: "another good password 42") }`,
				map[string]any{"p": alicePassword})
		}},
		{name: "revoke refresh token", change: func(t *testing.T, f *exactnessFixture) {
			f.revoke(t, url.Values{"token": {f.tok.RefreshToken}})
		}},
		{name: "revoke access token", change: func(t *testing.T, f *exactnessFixture) {
			f.revoke(t, url.Values{"token": {f.tok.AccessToken}, "token_type_hint": {"access_token"}})
		}},
		{name: "admin setUserDisabled", change: func(t *testing.T, f *exactnessFixture) {
			f.mutate(t, f.admin.AccessToken, `mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }`,
				map[string]any{"id": f.alice.ID})
		}},
		{name: "admin setUserScopes", wantScopes: []string{}, change: func(t *testing.T, f *exactnessFixture) {
			f.mutate(t, f.admin.AccessToken, `mutation($id: ID!) { setUserScopes(id: $id, scopes: []) { id } }`,
				map[string]any{"id": f.alice.ID})
		}},

		// This process, through the service: GraphQL has no mutation that
		// deletes a user or removes a client.
		{name: "service DeleteUser", change: func(t *testing.T, f *exactnessFixture) {
			if err := f.ta.app.service.DeleteUser(context.Background(), auth.Operator, f.alice.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "service RemoveClient", viaClient: true, change: func(t *testing.T, f *exactnessFixture) {
			if err := f.ta.app.service.RemoveClient(context.Background(), "app"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		for _, cp := range checkpoints {
			t.Run(tc.name+"/"+cp.name, func(t *testing.T) {
				f := newExactnessFixture(t, tc.viaClient)
				if cp.beforeReads {
					f.checkpoint(t, "TRUNCATE")
				}
				f.me(t, f.tok.AccessToken).wantUser(t, []string{"users:read"})
				cached := f.me(t, f.tok.AccessToken)
				cached.wantUser(t, []string{"users:read"})
				cached.wantHit(t)

				if cp.beforeChange {
					f.checkpoint(t, "TRUNCATE")
				}
				tc.change(t, f)
				if cp.afterChange {
					f.checkpoint(t, "TRUNCATE")
				}

				next := f.me(t, f.tok.AccessToken)
				if tc.wantScopes == nil {
					next.wantRefused(t)
				} else {
					next.wantUser(t, tc.wantScopes)
				}
				next.wantMiss(t)

				// And the answer read then is the one the cache keeps:
				// the request after it gets the same.
				again := f.me(t, f.tok.AccessToken)
				if tc.wantScopes == nil {
					again.wantRefused(t)
				} else {
					again.wantUser(t, tc.wantScopes)
					again.wantHit(t)
				}
			})
		}
	}
}

// TestSessionCacheSurvivesReadOnlyTraffic: with nothing committing, every
// request after a session's first is answered by the cache, for two
// sessions at once; a PASSIVE checkpoint, which leaves the wal-index header
// as it is, keeps every answer cached; and a TRUNCATE checkpoint, which
// rewrites the header, makes no answer wrong.
func TestSessionCacheSurvivesReadOnlyTraffic(t *testing.T) {
	f := newExactnessFixture(t, false)
	scopes := []string{"users:read"}
	sessions := []string{f.tok.AccessToken, f.other.AccessToken}
	const n = 50
	for i := range n {
		for _, tok := range sessions {
			a := f.me(t, tok)
			a.wantUser(t, scopes)
			if i == 0 {
				a.wantMiss(t)
			} else {
				a.wantHit(t)
			}
		}
	}

	// The logins left frames in the WAL: this checkpoint copies them back.
	f.checkpoint(t, "PASSIVE")
	for _, tok := range sessions {
		a := f.me(t, tok)
		a.wantUser(t, scopes)
		a.wantHit(t)
	}

	// TRUNCATE restarts the WAL: new salts in the header, so the cache
	// reads again (a hit would be right too: nothing changed). Once read,
	// the answers are cached again.
	f.checkpoint(t, "TRUNCATE")
	for _, tok := range sessions {
		a := f.me(t, tok)
		a.wantUser(t, scopes)
		t.Logf("first request after wal_checkpoint(TRUNCATE): hits +%d, misses +%d", a.hits, a.misses)
		a = f.me(t, tok)
		a.wantUser(t, scopes)
		a.wantHit(t)
	}
}

// TestSessionCacheSurvivesReadOnlyCLI: a CLI command that only reads, run
// beside the server, commits nothing, so it must leave the wal-index header
// (and so the cached answers) as they were.
//
// It fails when the server process holds no POSIX lock on the -shm file:
// SQLite's connections take a shared lock on its "DMS" byte while they use
// it, and a process that opens the database and finds that byte unlocked
// believes itself the only user, truncates the -shm and rebuilds the
// wal-index from the WAL (which resets iChange) under the running server.
// Closing any descriptor of the -shm file in the server process (as
// mapping it with os.Open and Close does) drops all of the process's
// locks on it (fcntl(2); sqlite.org/howtocorrupt.html, section 2.2).
func TestSessionCacheSurvivesReadOnlyCLI(t *testing.T) {
	f := newExactnessFixture(t, false)
	scopes := []string{"users:read"}
	f.me(t, f.tok.AccessToken).wantUser(t, scopes)
	f.me(t, f.tok.AccessToken).wantHit(t)

	f.cli(t, "", "user", "list")
	a := f.me(t, f.tok.AccessToken)
	a.wantUser(t, scopes)
	if a.hits != 1 || a.misses != 0 {
		t.Errorf("after 'authql user list' (no commit): cache hits +%d, misses +%d; want a hit: "+
			"the CLI rebuilt the wal-index, as it does when no process holds SQLite's lock on the -shm file", a.hits, a.misses)
	}
}
