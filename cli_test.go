package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"authql/auth/authtest"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// authqlBinary builds the program once per test run.
func authqlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "authql-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "authql")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binary
}

// cliRun runs the binary with args and stdin against dbPath and returns its
// output and exit code.
func cliRun(t *testing.T, dbPath, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliRunEnv(t, map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"}, stdin, args...)
}

// cliRunEnv runs the binary with args and stdin in the environment env
// (beside the test's own), and returns what it printed and its exit code.
func cliRunEnv(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(authqlBinary(t), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return out.String(), errOut.String(), exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), 0
}

// TestCLIBesideRunningServer runs every CLI command as its own process on
// the database of a running server, and checks the server sees the effect.
func TestCLIBesideRunningServer(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	base, _ := startRun(t, map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"})
	ok := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := cliRun(t, dbPath, stdin, args...)
		if code != 0 {
			t.Fatalf("authql %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	token := func(form url.Values, header string) (int, authtest.Tokens) {
		t.Helper()
		resp, body := authtest.PostForm(t, http.DefaultClient, base+"/token", form, header)
		var tok authtest.Tokens
		if err := json.Unmarshal(body, &tok); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, tok
	}
	password := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}

	ok(alicePassword+"\n", "user", "add", "-username", "alice", "-scopes", "users:read")
	ok(alicePassword, "user", "add", "-username", "bob")
	status, tok := token(password, "")
	if status != 200 || tok.Scope != "users:read" {
		t.Fatalf("login after user add: %d %+v", status, tok)
	}

	if out := ok("", "user", "scopes", "-username", "alice", "-scopes", "users:read,users:write"); !strings.Contains(out, `"users:read users:write"`) {
		t.Errorf("user scopes: %s", out)
	}
	if _, tok = token(password, ""); tok.Scope != "users:read users:write" {
		t.Errorf("scope after user scopes = %q", tok.Scope)
	}

	out := ok("", "user", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "alice") || !strings.Contains(lines[2], "bob") {
		t.Errorf("user list:\n%s", out)
	}

	ok("", "user", "disable", "-username", "alice")
	if status, _ := token(password, ""); status != 400 {
		t.Errorf("login of a disabled user: %d; want 400", status)
	}
	if status := authtest.MeStatus(t, base, tok.AccessToken); status != 401 {
		t.Errorf("token of a disabled user: %d; want 401", status)
	}
	ok("", "user", "enable", "-username", "alice")
	if status, _ = token(password, ""); status != 200 {
		t.Errorf("login after user enable: %d", status)
	}

	ok("a new password, long enough\n", "user", "passwd", "-username", "alice")
	if status, _ = token(password, ""); status != 400 {
		t.Errorf("old password after user passwd: %d; want 400", status)
	}
	password.Set("password", "a new password, long enough")
	if status, _ = token(password, ""); status != 200 {
		t.Errorf("new password after user passwd: %d", status)
	}

	// A client whose id and secret need form-encoding in HTTP Basic.
	ok("s3cret: with %&+ signs\n", "client", "add", "-id", "my app:1", "-scopes", "users:read")
	ok("", "client", "add", "-id", "spa", "-public", "-grants", "password")
	out = ok("", "client", "list")
	if !strings.Contains(out, "my app:1") || !strings.Contains(out, "confidential") || !strings.Contains(out, "public") {
		t.Errorf("client list:\n%s", out)
	}
	basic := authtest.BasicAuth("my app:1", "s3cret: with %&+ signs")
	status, tok = token(password, basic)
	if status != 200 || tok.Scope != "users:read" {
		t.Errorf("login with the registered client: %d %+v; want 200 and its scopes only", status, tok)
	}
	ok("", "client", "remove", "-id", "my app:1")
	if status, _ = token(password, basic); status != 401 {
		t.Errorf("login with a removed client: %d; want 401", status)
	}
	if status := authtest.MeStatus(t, base, tok.AccessToken); status != 401 {
		t.Errorf("token of a removed client: %d; want 401", status)
	}
}

func TestCLIErrors(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	if _, errOut, code := cliRun(t, dbPath, "", "migrate"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := cliRun(t, dbPath, alicePassword, "user", "add", "-username", "alice"); code != 0 {
		t.Fatal(errOut)
	}
	for _, tc := range []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		want     string
	}{
		{"unknown command", "", []string{"user", "frob"}, 2, "unknown command"},
		{"no username", alicePassword, []string{"user", "add"}, 2, "-username is required"},
		{"no password", "", []string{"user", "add", "-username", "bob"}, 2, "no password on stdin"},
		{"common password", "password1\n", []string{"user", "add", "-username", "bob"}, 1, "most common"},
		{"password as an argument", "", []string{"user", "add", "-username", "bob", "-password", "x"}, 2, "-password"},
		{"taken", alicePassword, []string{"user", "add", "-username", "ALICE"}, 1, "taken"},
		{"unknown user", "", []string{"user", "disable", "-username", "nobody"}, 1, `no user "nobody"`},
		{"scopes without -scopes", "", []string{"user", "scopes", "-username", "alice"}, 2, "-scopes is required"},
		{"bad scope", "", []string{"user", "scopes", "-username", "alice", "-scopes", `a"b`}, 1, "scope"},
		{"passwd short", "short\n", []string{"user", "passwd", "-username", "alice"}, 1, "at least 8"},
		{"client without id", "", []string{"client", "add"}, 2, "-id is required"},
		{"client short secret", "short\n", []string{"client", "add", "-id", "app"}, 1, "client secret must be"},
		{"client bad grant", "", []string{"client", "add", "-id", "app", "-public", "-grants", "implicit"}, 1, "implicit"},
		{"remove unknown client", "", []string{"client", "remove", "-id", "nope"}, 1, "no client"},
		{"bad bcrypt cost", alicePassword, []string{"user", "add", "-username", "bob", "-bcrypt-cost", "99"}, 2, "BCRYPT_COST"},
		{"copy without -to", "", []string{"copy"}, 2, "-to must be a postgres:// or postgresql:// URL"},
		{"copy to another database", "", []string{"copy", "-to", "mysql://db/authql"}, 2, "-to must be a postgres://"},
		{"copy without a key encryption key", "", []string{"copy", "-to", "postgres://authql@127.0.0.1:1/authql"}, 2, "KEY_ENCRYPTION_KEY"},
		{"bad database URL", "", []string{"user", "list", "-database-url", "mysql://authql:hunter2@db/x"}, 2, "DATABASE_URL (-database-url): want a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cliRun(t, dbPath, tc.stdin, tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q (stdout %q); want exit %d naming %q", code, errOut, out, tc.wantCode, tc.want)
			}
			if strings.Contains(out+errOut, "hunter2") {
				t.Errorf("the output shows a URL's password: %q %q", out, errOut)
			}
		})
	}
	for _, cmd := range commands {
		out, errOut, code := cliRun(t, dbPath, "", append(strings.Fields(cmd.name), "-h")...)
		if code != 0 || !strings.Contains(errOut, "Usage: authql "+cmd.name) {
			t.Errorf("%s -h: exit %d, %q %q", cmd.name, code, out, errOut)
		}
	}
}

func TestUserAddCommand(t *testing.T) {
	env := map[string]string{"DB_PATH": filepath.Join(t.TempDir(), "authql.db"), "BCRYPT_COST": "4"}
	if err := run(context.Background(), []string{"authql", "migrate"}, func(k string) string { return env[k] },
		strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	userAdd := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"authql", "user", "add"}, args...),
			func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := userAdd(alicePassword, "-username", "alice", "-scopes", "users:read,users:write"); err != nil ||
		!strings.Contains(out, `scopes "users:read users:write"`) {
		t.Fatalf("user add: %v %s", err, out)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no username", alicePassword, nil, "-username is required"},
		{"no password", "", []string{"-username", "bob"}, "no password on stdin"},
		{"short password", "short\n", []string{"-username", "bob"}, "at least 8 characters"},
		{"long password", strings.Repeat("x", 73), []string{"-username", "bob"}, "at most 72 bytes"},
		{"taken", alicePassword, []string{"-username", "ALICE"}, "taken"},
		{"bad scope", alicePassword, []string{"-username", "bob", "-scopes", `a"b`}, "scope"},
		{"unknown flag", alicePassword, []string{"-username", "bob", "-admin"}, "-admin"},
		{"bad cost", alicePassword, []string{"-username", "bob", "-bcrypt-cost", "99"}, "BCRYPT_COST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := userAdd(tc.stdin, tc.args...)
			if err == nil || !strings.Contains(err.Error()+out, tc.want) {
				t.Errorf("err = %v, output %q; want an error with %q", err, out, tc.want)
			}
		})
	}
	if out, err := userAdd("", "-h"); err != nil || !strings.Contains(out, "Usage: authql user add") {
		t.Errorf("-h: %v %q; want usage and no error", err, out)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"authql", "group", "add"}, func(string) string { return "" },
		strings.NewReader(""), &out, &out); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
}
