package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/pgtest"
	"authql/db/postgres"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testKEK is the KEY_ENCRYPTION_KEY of the tests' PostgreSQL instances.
const testKEK = "a key encryption key of 32 bytes or more"

// newInstances starts n instances of authql as newApp builds them, each
// behind its own HTTP server, on one new PostgreSQL database, sharing one
// clock; edit may change their configuration.
func newInstances(t *testing.T, n int, edit ...func(*config)) ([]*testApp, *authtest.Clock) {
	t.Helper()
	dbURL := pgtest.URL(t)
	c := authtest.NewClock(time.Now().UTC())
	sealer, err := auth.NewSealer([]byte(testKEK))
	if err != nil {
		t.Fatal(err)
	}
	apps := make([]*testApp, n)
	for i := range apps {
		apps[i] = newTestApp(t, append([]func(*config){func(cfg *config) {
			cfg.store.url, cfg.auth.Sealer, cfg.auth.Now = dbURL, sealer, c.Now
		}}, edit...)...)
	}
	return apps, c
}

// TestManyInstances: three instances on one PostgreSQL database behave as
// one server, whichever of them each request reaches.
func TestManyInstances(t *testing.T) {
	t.Run("SignInOnOneMeOnAnother", func(t *testing.T) {
		apps, _ := newInstances(t, 3)
		apps[0].addUser("alice", alicePassword)
		tok := apps[1].login("alice", alicePassword)
		wantMe(t, apps[2], tok.AccessToken, "alice")
		wantMe(t, apps[0], tok.AccessToken, "alice")
	})

	t.Run("LogoutOnOneRefusesOnAll", func(t *testing.T) {
		apps, _ := newInstances(t, 3)
		apps[0].addUser("alice", alicePassword)
		tok := apps[0].login("alice", alicePassword)
		for _, a := range apps {
			wantMe(t, a, tok.AccessToken, "alice")
		}
		_, res := apps[2].graphql(tok.AccessToken, `mutation { logout }`, nil)
		if len(res.Errors) > 0 {
			t.Fatalf("logout: %+v", res.Errors)
		}
		for i, a := range apps {
			if status := authtest.MeStatus(t, a.URL, tok.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("instance %d: me after logout on instance 2: %d; want 401", i, status)
			}
		}
	})

	t.Run("RefreshReplayAcrossInstances", func(t *testing.T) {
		apps, c := newInstances(t, 3)
		apps[0].addUser("alice", alicePassword)
		tok := apps[0].login("alice", alicePassword)
		refresh := func(a *testApp, token string) (*http.Response, authtest.Tokens) {
			t.Helper()
			resp, body := a.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
			var out authtest.Tokens
			json.Unmarshal(body, &out)
			return resp, out
		}
		resp, first := refresh(apps[1], tok.RefreshToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d", resp.StatusCode)
		}
		resp, replay := refresh(apps[2], tok.RefreshToken)
		if resp.StatusCode != http.StatusOK || replay.RefreshToken != first.RefreshToken {
			t.Fatalf("replay inside the grace window on another instance: %d, same child %v",
				resp.StatusCode, replay.RefreshToken == first.RefreshToken)
		}
		c.Advance(time.Minute) // past REFRESH_REUSE_GRACE
		if resp, _ := refresh(apps[0], tok.RefreshToken); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replay after the grace window: %d; want 400", resp.StatusCode)
		}
		for i, a := range apps {
			if resp, _ := refresh(a, first.RefreshToken); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("instance %d: the child after theft was detected: %d; want 400", i, resp.StatusCode)
			}
			if status := authtest.MeStatus(t, a.URL, first.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("instance %d: the session's access token after theft was detected: %d; want 401", i, status)
			}
		}
	})

	t.Run("FailedLoginsCountAcrossInstances", func(t *testing.T) {
		const limit = 5
		apps, _ := newInstances(t, 3, func(cfg *config) {
			cfg.auth.LoginPairLimit = auth.Limit{N: limit, Per: time.Hour}
		})
		apps[0].addUser("alice", alicePassword)
		for i := range limit {
			resp, body := apps[i%3].wrongLogin("alice")
			authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")
		}
		for i, a := range apps {
			resp, body := a.wrongLogin("alice")
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("instance %d: failure %d: %d; want 429, as one instance would answer", i, limit+1, resp.StatusCode)
				continue
			}
			authtest.WantThrottled(t, resp, body)
		}
	})
}

// TestKeyRotatedThroughOneInstanceIsPublishedByAll runs three servers
// through run(), as three hosts would, and rotates the signing key with the
// CLI: every instance publishes the new key within its next read of the
// keys (every second), and a token signed by any verifies on all.
func TestKeyRotatedThroughOneInstanceIsPublishedByAll(t *testing.T) {
	env := map[string]string{"DATABASE_URL": pgtest.URL(t), "KEY_ENCRYPTION_KEY": testKEK, "BCRYPT_COST": "4"}
	var bases []string
	for range 3 {
		base, _ := startRun(t, env)
		bases = append(bases, base)
	}
	kids := func(base string) []string {
		t.Helper()
		resp, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range set.Keys {
			ids = append(ids, k.Kid)
		}
		return ids
	}
	first := kids(bases[0])
	for _, base := range bases[1:] {
		if got := kids(base); strings.Join(got, " ") != strings.Join(first, " ") || len(got) != 1 {
			t.Fatalf("instances publish %v and %v; want the same one key", first, got)
		}
	}
	out, errOut, code := cliRunEnv(t, env, "", "key", "rotate")
	if code != 0 {
		t.Fatalf("key rotate: exit %d: %s%s", code, out, errOut)
	}
	for i, base := range bases {
		deadline := time.Now().Add(10 * time.Second)
		for len(kids(base)) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d still publishes %v 10s after the rotation", i, kids(base))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestKilledInstanceLosesNothingAcknowledged: three instances of the real
// binary on one PostgreSQL database; one is killed with SIGKILL in the
// middle of a storm of signups and refreshes spread over all three. Every
// write any of them acknowledged is there for the survivors.
func TestKilledInstanceLosesNothingAcknowledged(t *testing.T) {
	env := []string{"DATABASE_URL=" + pgtest.URL(t), "KEY_ENCRYPTION_KEY=" + testKEK}
	var (
		bases  []string
		victim *exec.Cmd
	)
	for range 3 {
		base, cmd := startBinary(t, "unused.db", env...)
		bases, victim = append(bases, base), cmd
	}
	accounts := stormUntilKilled(t, bases, victim)
	wantAcknowledged(t, bases[0], accounts)
}

// TestBusyPostgres: a table locked by another client past the wait (a
// stuck migration, an operator's transaction) and a pool with no
// connection free in time both answer 503 with Retry-After, as SQLite's
// busy writer does, never a 500 or a misleading invalid_grant; once the
// lock goes, everything works again.
func TestBusyPostgres(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	apps, _ := newInstances(t, 1, func(cfg *config) {
		cfg.store.url = dbURL + "&pool_max_conns=1"
		cfg.store.postgres = postgres.Options{Wait: 300 * time.Millisecond}
	})
	ta := apps[0]
	ta.addUser("alice", alicePassword)
	access := ta.login("alice", alicePassword).AccessToken

	locker, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 { // more requests than the pool has connections
		wg.Go(func() {
			resp, body := ta.postToken(authtest.PasswordGrant("alice", alicePassword))
			authtest.WantOAuth(t, resp, body, http.StatusServiceUnavailable, "temporarily_unavailable")
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
		wg.Go(func() {
			resp, gql := ta.graphql(access, `{ me { id } }`, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("me while busy: %d, Retry-After %q, %+v; want 503 with Retry-After",
					resp.StatusCode, resp.Header.Get("Retry-After"), gql.Errors)
			}
		})
	}
	wg.Wait()
	tx.Rollback(ctx)
	wantMe(t, ta, access, "alice")
	ta.login("alice", alicePassword)
}

// TestCLIOnPostgres: the CLI with DATABASE_URL refuses a database without
// authql's tables (creating none), migrate creates them, the user commands
// work, and backup points to pg_dump.
func TestCLIOnPostgres(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "BCRYPT_COST": "4"}
	tables := func() bool {
		t.Helper()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass('users') IS NOT NULL`).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		return exists
	}
	if _, errOut, code := cliRunEnv(t, env, "", "user", "list"); code != 1 || !strings.Contains(errOut, "no authql tables") ||
		!strings.Contains(errOut, "authql migrate") {
		t.Errorf("user list on an empty database: exit %d, %q", code, errOut)
	}
	if tables() {
		t.Fatal("the CLI created the tables")
	}
	if out, errOut, code := cliRunEnv(t, env, "", "migrate"); code != 0 || !strings.Contains(out, "is ready") {
		t.Fatalf("migrate: exit %d: %s%s", code, out, errOut)
	}
	if !tables() {
		t.Fatal("migrate created no tables")
	}
	if out, errOut, code := cliRunEnv(t, env, alicePassword, "user", "add", "-username", "alice"); code != 0 {
		t.Fatalf("user add: exit %d: %s%s", code, out, errOut)
	}
	if out, _, _ := cliRunEnv(t, env, "", "user", "list"); !strings.Contains(out, "alice") {
		t.Errorf("user list: %q", out)
	}
	if _, errOut, code := cliRunEnv(t, env, "", "backup", "-o", filepath.Join(t.TempDir(), "b.db")); code != 1 ||
		!strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup with DATABASE_URL: exit %d, %q; want a pointer to pg_dump", code, errOut)
	}
}
