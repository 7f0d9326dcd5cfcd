package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/sqlite"
)

// wantPrivate fails unless every one of the database's files that exists
// has mode 0600, and the database itself exists.
func wantPrivate(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) && p != path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s has mode %04o; want 0600", filepath.Base(p), got)
		}
	}
}

// settingKeys lists the keys of the settings table, read as any process
// could.
func settingKeys(t *testing.T, path string) []string {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT key FROM settings ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	return keys
}

// TestDatabaseFilesArePrivate: the database and its -wal and -shm are
// created 0600 by the server and by the CLI, whatever the umask, and a
// database that group or others may read or write is refused with a message
// that names the file and the fix.
func TestDatabaseFilesArePrivate(t *testing.T) {
	t.Run("created by the server", func(t *testing.T) {
		ta := newTestApp(t)
		ta.addUser("alice", alicePassword)
		ta.login("alice", alicePassword)
		path := ta.dbPath
		if _, err := os.Stat(path + "-wal"); err != nil {
			t.Fatalf("no -wal while the server runs: %v", err)
		}
		wantPrivate(t, path)
	})

	t.Run("created by the CLI", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "authql.db")
		if _, errOut, code := cliRun(t, path, "", "migrate"); code != 0 {
			t.Fatalf("migrate: %d %s", code, errOut)
		}
		if _, errOut, code := cliRun(t, path, alicePassword, "user", "add", "-username", "alice"); code != 0 {
			t.Fatalf("user add: %d %s", code, errOut)
		}
		wantPrivate(t, path)
		// The CLI makes and stores no signing key: only the server does.
		if keys := settingKeys(t, path); slices.Contains(keys, "jwt_secret") || slices.Contains(keys, "refresh_token_secret") {
			t.Errorf("settings after the CLI = %v; want no secret", keys)
		}
	})

	for _, file := range []string{"", "-wal", "-shm"} {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o620, 0o606} {
			t.Run(fmt.Sprintf("refused: %s at %04o", "authql.db"+file, mode), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "authql.db")
				store, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				store.Close()
				if err := os.WriteFile(path+file, nil, 0o600); file != "" && err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path+file, mode); err != nil {
					t.Fatal(err)
				}
				cfg := defaultConfig()
				cfg.store.path, cfg.auth.Secret, cfg.auth.BcryptCost = path, []byte(testSecret), 4
				_, err = newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
				if err == nil {
					t.Fatal("the server started on a database that others may read or write")
				}
				for _, want := range []string{"DB_PATH", path + file, fmt.Sprintf("%04o", mode), "chmod 600 " + path + file} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if _, errOut, code := cliRun(t, path, "", "user", "list"); code == 0 || !strings.Contains(errOut, "chmod 600") {
					t.Errorf("CLI on the same database: exit %d, %s", code, errOut)
				}
			})
		}
	}
}

// TestStoredSigningKeyDoesNotDeriveRefreshTokens: whoever holds the
// access-token signing key that the server made and stored in the database
// (JWT_SECRET unset) cannot walk a session's refresh tokens from an old one
// to the next: the server stores a refresh token secret of its own. (graph's
// TestSigningKeyDoesNotDeriveRefreshTokens checks a configured key.)
func TestStoredSigningKeyDoesNotDeriveRefreshTokens(t *testing.T) {
	ta := newTestApp(t, func(c *config) { c.auth.Secret = nil })
	ta.addUser("alice", alicePassword)
	keys, err := ta.app.db.SigningKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("stored signing keys: %d, %v; want one", len(keys), err)
	}
	key := keys[0].Private
	if _, err := ta.app.db.Setting(context.Background(), "refresh_token_secret"); err != nil {
		t.Fatalf("no refresh token secret of its own: %v", err)
	}
	first := ta.login("alice", alicePassword)
	guess := authtest.LegacyChild(key, first.RefreshToken)
	resp, body := ta.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), guess) {
		t.Fatal("the child refresh token is derived from the signing key")
	}
	resp, body = ta.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {guess}})
	authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")
}

// TestCLIMayGrantAnyScope: the CLI, an operator with the database, may
// grant any scope, one that no administrator's token carries included.
// (Through GraphQL an administrator may grant only the scopes their token
// carries: graph's TestAdminMayGrantOnlyScopesTheirTokenCarries.)
func TestCLIMayGrantAnyScope(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword, "users:read")
	if out, errOut, code := cliRun(t, ta.dbPath, "", "user", "scopes", "-username", "alice", "-scopes", "billing:admin users:write"); code != 0 {
		t.Fatalf("CLI user scopes: %d %s %s", code, out, errOut)
	}
	if got, _ := ta.app.service.UserByUsername(context.Background(), "alice"); auth.FormatScope(got.Scopes) != "billing:admin users:write" {
		t.Errorf("after the CLI: %v", got.Scopes)
	}
}

// TestPasswordCheckTimingIgnoresStoredCost: an unknown user takes as long as
// the most expensive stored hash, and a user whose hash is cheaper than the
// configured cost waits as long, so timing tells no user apart. The CLI
// hashes at the cost the server recorded.
func TestPasswordCheckTimingIgnoresStoredCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authql.db")
	store, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	for name, cost := range map[string]int{"cheap": 4, "dear": 9} {
		hash, _ := bcrypt.GenerateFromPassword([]byte(alicePassword), cost)
		err := store.CreateUser(context.Background(), &auth.User{ID: auth.NewID(), Username: name, CreatedAt: time.Now()}, hash)
		if err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	ta := newTestApp(t, func(c *config) { c.store.path, c.auth.BcryptCost = path, 6 })

	fastest := func(name string) time.Duration {
		best := time.Hour
		for i := range 4 {
			start := time.Now()
			resp, body := ta.wrongLogin(name)
			best = min(best, time.Since(start))
			authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")
			_ = i
		}
		return best
	}
	dear, unknown, cheap := fastest("dear"), fastest("nobody"), fastest("cheap")
	t.Logf("fastest wrong login: cost-9 user %v, unknown user %v, cost-4 user %v (configured cost 6)", dear, unknown, cheap)
	// Noise only slows a request down, so the fastest of a few is the work;
	// a cost-6 comparison alone would be an eighth of a cost-9 one.
	for name, d := range map[string]time.Duration{"unknown": unknown, "cost-4": cheap} {
		if d < dear*6/10 {
			t.Errorf("%s user answered in %v, against %v for a real one: timing tells them apart", name, d, dear)
		}
	}

	// The server recorded its cost; a user added by the CLI without
	// BCRYPT_COST gets it.
	cmd := exec.Command(authqlBinary(t), "user", "add", "-username", "fromcli")
	cmd.Env = append(os.Environ(), "DB_PATH="+path, "BCRYPT_COST=")
	cmd.Stdin = strings.NewReader(alicePassword)
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatalf("user add: %v", err)
	}
	_, cred, err := ta.app.db.UserByUsername(context.Background(), auth.UsernameKey("fromcli"))
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost(cred.Hash); cost != 6 {
		t.Errorf("the CLI hashed at cost %d; want the server's 6", cost)
	}
}

// TestKeyEncryptionKey: with KEY_ENCRYPTION_KEY the private signing keys and
// the refresh token secret are stored encrypted; the server starts again
// with the same key, and a wrong or missing key stops it with a message
// that says so, never with a silent new key.
func TestKeyEncryptionKey(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	const kek = "a key encryption key of at least 32 bytes"
	env := map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4", "KEY_ENCRYPTION_KEY": kek}
	_, stop := startRun(t, env)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var key, refresh []byte
	raw.QueryRow(`SELECT private_key FROM signing_keys`).Scan(&key)
	raw.QueryRow(`SELECT value FROM settings WHERE key = 'refresh_token_secret'`).Scan(&refresh)
	raw.Close()
	if !auth.IsSealed(key) || !auth.IsSealed(refresh) {
		t.Fatalf("stored in plain form: key %t, refresh secret %t", auth.IsSealed(key), auth.IsSealed(refresh))
	}

	_, stop = startRun(t, env) // the same key opens them
	stop()
	for name, value := range map[string]string{"a wrong key": "another key encryption key, 32 bytes long", "no key": ""} {
		env["KEY_ENCRYPTION_KEY"] = value
		err := run(context.Background(), []string{"authql", "-addr", "127.0.0.1:0"}, func(k string) string { return env[k] },
			strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "KEY_ENCRYPTION_KEY") {
			t.Errorf("%s: %v; want an error naming KEY_ENCRYPTION_KEY", name, err)
		}
	}
	raw, _ = sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	defer raw.Close()
	var keys int
	raw.QueryRow(`SELECT count(*) FROM signing_keys`).Scan(&keys)
	if keys != 1 {
		t.Errorf("%d signing keys after the refused starts; want the one", keys)
	}
}

// TestUpgradeFromAnEarlierVersion: a database in which an earlier version
// stored its HS256 key (settings.jwt_secret) is served by this one with
// asymmetric keys; an access token that version signed (no kid) still
// works until it expires, and so does a refresh token from before.
func TestUpgradeFromAnEarlierVersion(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	legacy := []byte("the HS256 key an earlier version generated")
	env := map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"}
	// The earlier version's database: its key stored, a user, a session.
	if err := run(context.Background(), []string{"authql", "migrate"}, func(k string) string { return env[k] },
		strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cliRun(t, dbPath, alicePassword, "user", "add", "-username", "alice"); code != 0 {
		t.Fatal(errOut)
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetSetting(ctx, "jwt_secret", legacy); err != nil {
		t.Fatal(err)
	}
	alice, _, err := store.UserByUsername(ctx, auth.UsernameKey("alice"))
	if err != nil {
		t.Fatal(err)
	}
	oldRefresh := base64.RawURLEncoding.EncodeToString([]byte("a refresh token of 32 bytes long"))
	now := time.Now()
	oldSession := &auth.Session{ID: auth.NewID(), UserID: alice.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := store.CreateSession(ctx, auth.NewSession{Session: oldSession, RefreshHash: auth.HashToken(oldRefresh)}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	base, _ := startRun(t, env)
	resp, err := http.PostForm(base+"/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
	if err != nil {
		t.Fatal(err)
	}
	var tok authtest.Tokens
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	// What the earlier version would have signed for this session: HS256,
	// no kid.
	claims := jwt.MapClaims{}
	jwt.NewParser().ParseUnverified(tok.AccessToken, claims)
	old := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	old.Header["typ"] = "at+jwt"
	oldToken, err := old.SignedString(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if status := authtest.MeStatus(t, base, oldToken); status != http.StatusOK {
		t.Errorf("the earlier version's access token: %d; want 200", status)
	}
	if status := authtest.MeStatus(t, base, tok.AccessToken); status != http.StatusOK {
		t.Errorf("a new token: %d", status)
	}
	resp, err = http.PostForm(base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {oldRefresh}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a refresh token from before the upgrade: %d", resp.StatusCode)
	}
}
