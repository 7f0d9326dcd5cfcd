package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"authql/auth"
	"authql/db/pgtest"
)

// TestRealClients runs the Node tests in e2e/ against the real server
// binary: Apollo Client 4 (apollo.test.mjs), the graphql-http audit
// (audit.test.mjs) and the playground in Chromium (playground.test.mjs).
// Without Node, e2e/node_modules or Chromium they skip with a loud message,
// and fail when CI=true.
func TestRealClients(t *testing.T) {
	node := requireTool(t, "node")
	if _, err := os.Stat(filepath.Join("e2e", "node_modules", "@apollo", "client")); err != nil {
		missing(t, "e2e/node_modules (run: npm ci --prefix e2e)")
	}
	base, _ := startBinary(t, filepath.Join(t.TempDir(), "authql.db"))
	for _, file := range []string{"apollo.test.mjs", "audit.test.mjs", "playground.test.mjs"} {
		t.Run(strings.TrimSuffix(file, ".test.mjs"), func(t *testing.T) { runNodeTest(t, node, base, file) })
	}
}

// TestRealClientsOnPostgres runs Apollo Client and the graphql-http audit
// against the real binary on PostgreSQL, two instances on one database:
// Apollo's requests go to one, the audit's to the other.
func TestRealClientsOnPostgres(t *testing.T) {
	node := requireTool(t, "node")
	if _, err := os.Stat(filepath.Join("e2e", "node_modules", "@apollo", "client")); err != nil {
		missing(t, "e2e/node_modules (run: npm ci --prefix e2e)")
	}
	env := []string{"DATABASE_URL=" + pgtest.URL(t), "KEY_ENCRYPTION_KEY=" + testKEK}
	for i, file := range []string{"apollo.test.mjs", "audit.test.mjs"} {
		base, _ := startBinary(t, "unused.db", env...)
		t.Run(fmt.Sprintf("%s on instance %d", strings.TrimSuffix(file, ".test.mjs"), i), func(t *testing.T) {
			runNodeTest(t, node, base, file)
		})
	}
}

// runNodeTest runs the Node test file in e2e/ against the server at base,
// with its artifacts (screenshots, the audit report) in e2e/test-results.
func runNodeTest(t *testing.T, node, base, file string) {
	t.Helper()
	artifacts, err := filepath.Abs(filepath.Join("e2e", "test-results"))
	if err == nil {
		err = os.MkdirAll(artifacts, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "BASE_URL="+base, "ARTIFACTS_DIR="+artifacts, "AUDIT_REPORT="+filepath.Join(artifacts, "audit.json"))
	if file == "playground.test.mjs" {
		env = append(env, "CHROMIUM="+requireTool(t, "chromium"))
	}
	cmd := exec.Command(node, "--test", "--test-reporter=spec", file)
	cmd.Dir, cmd.Env = "e2e", env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", file, err, out)
	}
	t.Logf("node --test %s:\n%s", file, out)
}

// TestJWKSWithJose runs e2e/jwks.test.mjs: jose, a third-party JavaScript
// JOSE library, verifies access tokens as a resource server would, from the
// discovered metadata and JWKS alone, against one real server per JWT_ALG.
// Each server runs with PUBLIC_URL set to its own address, so that jose
// checks iss against the discovered issuer. The user is made with the CLI,
// with a scope, so that the token carries one. Without Node or
// e2e/node_modules it skips loudly, and fails when CI=true.
func TestJWKSWithJose(t *testing.T) {
	node := requireTool(t, "node")
	if _, err := os.Stat(filepath.Join("e2e", "node_modules", "jose")); err != nil {
		missing(t, "e2e/node_modules (run: npm ci --prefix e2e)")
	}
	const scope = auth.ScopeUsersRead

	for _, alg := range []string{auth.AlgES256, auth.AlgEdDSA, auth.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "authql.db")
			base := startBinaryWithPublicURL(t, dbPath, "JWT_ALG="+alg)

			username := "jose-" + strings.ToLower(alg)
			out, errOut, code := cliRun(t, dbPath, alicePassword, "user", "add", "-username", username, "-scopes", scope)
			if code != 0 {
				t.Fatalf("authql user add: exit %d: %s%s", code, out, errOut)
			}

			cmd := exec.Command(node, "--test", "--test-reporter=spec", "jwks.test.mjs")
			cmd.Dir = "e2e"
			cmd.Env = append(os.Environ(), "BASE_URL="+base, "EXPECTED_ALG="+alg,
				"TEST_USERNAME="+username, "TEST_PASSWORD="+alicePassword, "TEST_SCOPE="+scope)
			nodeOut, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node --test jwks.test.mjs (JWT_ALG=%s): %v\n%s", alg, err, nodeOut)
			}
			t.Logf("node --test jwks.test.mjs (JWT_ALG=%s):\n%s", alg, nodeOut)
		})
	}
}

// startBinaryWithPublicURL is startBinary with PUBLIC_URL set to the
// server's own base URL, which must therefore be known before it starts: it
// takes a free port, and passes it in ADDR (startBinary's -addr flag would
// win over ADDR). Another process may take the port between the probe and
// the server's listen, so it tries a few ports. The server's stderr is
// logged when the test fails.
func startBinaryWithPublicURL(t *testing.T, dbPath string, env ...string) string {
	t.Helper()
	var lastErr error
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		publicURL := "http://" + addr

		cmd := exec.Command(authqlBinary(t))
		// JWT_SECRET and JWT_ISSUER from the caller's environment would
		// change what the test checks; empty is unset.
		cmd.Env = append(os.Environ(), "DB_PATH="+dbPath, "BCRYPT_COST=4", "BCRYPT_WAIT=1m",
			"JWT_SECRET=", "JWT_ISSUER=", "ADDR="+addr, "PUBLIC_URL="+publicURL)
		cmd.Env = append(cmd.Env, env...)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			lastErr = fmt.Errorf("the server printed no address: %v; stderr:\n%s", err, stderr.String())
			continue // most likely the port was taken
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("server stderr:\n%s", stderr.String())
			}
		})
		if base := strings.TrimPrefix(strings.TrimSpace(line), "authql listening on "); base != publicURL {
			t.Fatalf("first line = %q, want the server listening on %s", line, publicURL)
		}
		return publicURL
	}
	t.Fatal(lastErr)
	return ""
}

// lockedBuffer is a bytes.Buffer that the process's stderr copier writes
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requireTool returns the path of a program the test needs, or skips (fails
// under CI) when it is not installed.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" (not on PATH)")
	}
	return path
}

// missing fails the test under CI, whose .ci/run installs everything, and
// otherwise skips it loudly, so that the tests still pass on a machine with
// only Go. The reason goes to stderr, which plain `go test ./...` hides for
// a passing package, and to the skip message, which the README's test
// command (gotestsum) lists in its summary.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; .ci/run must install it", what)
	}
	fmt.Fprintf(os.Stderr, "\n*** SKIPPING %s: %s is missing. Install it to run this test (see README, Quick start). ***\n\n", t.Name(), what)
	t.Skipf("%s is missing; install it to run this test (README, Quick start)", what)
}
