package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	artifacts, err := filepath.Abs(filepath.Join("e2e", "test-results"))
	if err == nil {
		err = os.MkdirAll(artifacts, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}

	for _, file := range []string{"apollo.test.mjs", "audit.test.mjs", "playground.test.mjs"} {
		t.Run(strings.TrimSuffix(file, ".test.mjs"), func(t *testing.T) {
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
		})
	}
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
