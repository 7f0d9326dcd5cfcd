package main

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"authql/auth/authtest"
)

// TestUserDeleteEndsEveryDoor: deleting a user with the CLI beside a running
// server refuses, at once, its access token, its refresh token, and both
// login doors.
func TestUserDeleteEndsEveryDoor(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	base, _ := startRun(t, map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"})
	if _, errOut, code := cliRun(t, dbPath, alicePassword, "user", "add", "-username", "alice"); code != 0 {
		t.Fatal(errOut)
	}
	post := func(path, contentType, body string) (int, []byte) {
		t.Helper()
		resp, err := http.Post(base+path, contentType, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	const form = "application/x-www-form-urlencoded"
	login := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}.Encode()
	status, body := post("/token", form, login)
	var tok authtest.Tokens
	if json.Unmarshal(body, &tok); status != http.StatusOK {
		t.Fatalf("login: %d %s", status, body)
	}

	out, errOut, code := cliRun(t, dbPath, "", "user", "delete", "-username", "alice")
	if code != 0 || !strings.Contains(out, "deleted user alice") {
		t.Fatalf("user delete: exit %d %s %s", code, out, errOut)
	}
	if status := authtest.MeStatus(t, base, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("access token after delete: %d; want 401", status)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode()
	for name, req := range map[string]string{"refresh": refresh, "password": login} {
		if status, body := post("/token", form, req); status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_grant") {
			t.Errorf("%s grant after delete: %d %s; want 400 invalid_grant", name, status, body)
		}
	}
	gql, _ := json.Marshal(map[string]any{
		"query":     `mutation($p: String!) { login(username: "alice", password: $p) { accessToken } }`,
		"variables": map[string]any{"p": alicePassword},
	})
	if _, body := post("/query", "application/json", string(gql)); !strings.Contains(string(body), "INVALID_GRANT") {
		t.Errorf("GraphQL login after delete: %s", body)
	}
	if out, _, _ := cliRun(t, dbPath, "", "user", "list"); strings.Contains(out, "alice") {
		t.Errorf("user list after delete:\n%s", out)
	}
	if _, errOut, code := cliRun(t, dbPath, "", "user", "delete", "-username", "alice"); code != 1 || !strings.Contains(errOut, `no user "alice"`) {
		t.Errorf("deleting again: exit %d %s", code, errOut)
	}
}

// TestCLINeverCreatesADatabase: only the server and migrate create a
// database; every other command refuses a path where there is none, naming
// the absolute path, and leaves nothing behind.
func TestCLINeverCreatesADatabase(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"user", "add", "-username", "alice"}, {"user", "list"}, {"user", "disable", "-username", "alice"},
		{"client", "list"}, {"client", "add", "-id", "app", "-public"},
	} {
		_, errOut, code := cliRun(t, missing, alicePassword, args...)
		if code != 1 || !strings.Contains(errOut, "no database at "+missing) || !strings.Contains(errOut, "authql migrate") {
			t.Errorf("%s on a missing database: exit %d, %q", strings.Join(args, " "), code, errOut)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%s left %v behind", strings.Join(args, " "), entries)
		}
	}
	// A relative path is named absolutely.
	cmd := exec.Command(authqlBinary(t), "user", "list", "-db", "typo.db")
	cmd.Dir = dir
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "no database at "+missing) {
		t.Errorf("relative path: %s", out)
	}

	if out, errOut, code := cliRun(t, missing, "", "migrate"); code != 0 || !strings.Contains(out, missing) {
		t.Fatalf("migrate: exit %d %s %s", code, out, errOut)
	}
	wantPrivate(t, missing)
	if _, errOut, code := cliRun(t, missing, "", "user", "list"); code != 0 {
		t.Errorf("user list after migrate: exit %d %s", code, errOut)
	}
}

// TestCLIGroupsListTheirCommands: "authql user" and "authql client" alone
// list their commands (a usage error), and with -h list them and succeed.
func TestCLIGroupsListTheirCommands(t *testing.T) {
	for group, want := range map[string][]string{
		"user":   {"add", "passwd", "disable", "enable", "scopes", "list", "delete"},
		"client": {"add", "list", "remove"},
		"key":    {"list", "rotate", "revoke"},
	} {
		for _, args := range [][]string{{group}, {group, "-h"}} {
			_, errOut, code := cliRun(t, filepath.Join(t.TempDir(), "none.db"), "", args...)
			wantCode := 2
			if len(args) == 2 {
				wantCode = 0
			}
			if code != wantCode || strings.Contains(errOut, "unknown command") {
				t.Errorf("authql %s: exit %d; want %d (%s)", strings.Join(args, " "), code, wantCode, errOut)
			}
			for _, sub := range want {
				if !strings.Contains(errOut, sub) {
					t.Errorf("authql %s does not list %q: %s", strings.Join(args, " "), sub, errOut)
				}
			}
		}
	}
}

// TestVersionNamesTheRevision: a binary built from a git checkout says
// which commit it was built from.
func TestVersionNamesTheRevision(t *testing.T) {
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "authql")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(out), "revision "+strings.TrimSpace(string(rev))) || !strings.Contains(string(out), "go1.") {
		t.Errorf("version = %q, %v; want the revision %s and the Go version", out, err, rev)
	}
}

// TestCLINotesNewScopes: granting a scope that nobody has yet is allowed,
// but said, so that a typo does not pass silently.
func TestCLINotesNewScopes(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	cliRun(t, dbPath, "", "migrate")
	if _, errOut, code := cliRun(t, dbPath, alicePassword, "user", "add", "-username", "alice", "-scopes", "users:read"); code != 0 || strings.Contains(errOut, "note") {
		t.Fatalf("a known scope: exit %d %q", code, errOut)
	}
	_, errOut, code := cliRun(t, dbPath, "", "user", "scopes", "-username", "alice", "-scopes", "user:read")
	if code != 0 || !strings.Contains(errOut, `no user or client has the scope "user:read" yet`) {
		t.Errorf("a new scope: exit %d %q", code, errOut)
	}
}

// TestKeyCommands: key list shows kid, algorithm, state and dates and no
// private part; key rotate starts one rotation at a time; key revoke
// revokes by kid.
func TestKeyCommands(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	_, stop := startRun(t, map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"})
	stop() // the server made the first key
	out, errOut, code := cliRun(t, dbPath, "", "key", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[1], "ES256") || !strings.Contains(lines[1], "active") {
		t.Fatalf("key list: exit %d %q %q", code, out, errOut)
	}
	active := strings.Fields(lines[1])[0]

	out, errOut, code = cliRun(t, dbPath, "", "key", "rotate")
	if code != 0 || !strings.Contains(out, "signs from") {
		t.Fatalf("key rotate: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code := cliRun(t, dbPath, "", "key", "rotate"); code != 1 || !strings.Contains(errOut, "rotation is under way") {
		t.Errorf("a second rotation: exit %d %q", code, errOut)
	}
	if out, errOut, code := cliRun(t, dbPath, "", "key", "revoke", active); code != 0 || !strings.Contains(out, "revoked signing key "+active) {
		t.Errorf("key revoke: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code := cliRun(t, dbPath, "", "key", "revoke", "no-such-kid"); code != 1 || !strings.Contains(errOut, "no signing key") {
		t.Errorf("revoking an unknown kid: exit %d %q", code, errOut)
	}
	if _, errOut, code := cliRun(t, dbPath, "", "key", "revoke"); code != 2 || !strings.Contains(errOut, "kid") {
		t.Errorf("key revoke without a kid: exit %d %q", code, errOut)
	}
	out, _, _ = cliRun(t, dbPath, "", "key", "list")
	if !strings.Contains(out, "revoked") || !strings.Contains(out, "pending") {
		t.Errorf("key list after rotate and revoke:\n%s", out)
	}
	raw, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT private_key FROM signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var der []byte
		rows.Scan(&der)
		for _, enc := range []string{base64.StdEncoding.EncodeToString(der), base64.RawURLEncoding.EncodeToString(der), hex.EncodeToString(der)} {
			if strings.Contains(out, enc[:24]) {
				t.Error("key list shows a private key")
			}
		}
	}
}
