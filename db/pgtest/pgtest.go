// Package pgtest gives tests a fresh, empty PostgreSQL database each, on a
// throwaway cluster it starts itself the first time a test asks for one, or
// on the server named by $AUTHQL_TEST_POSTGRES.
//
// A package that calls URL must run its tests through Main, which stops the
// cluster once they are done:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Where PostgreSQL is not installed, or the cluster does not start, the
// tests that call URL are skipped, with a banner on stderr saying so; with
// CI=true they fail instead, so CI cannot pass without running them.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// envURL names the variable holding the URL of an existing server to use
// instead of a cluster of our own. Its user must be allowed to CREATE DATABASE.
const envURL = "AUTHQL_TEST_POSTGRES"

// superuser is the role initdb makes; trust authentication on a socket only
// this user (or root) can reach means it needs no password.
const superuser = "authql"

var (
	mainCalled atomic.Bool
	stopped    atomic.Bool // the cluster is gone, so dropping databases cannot work

	setupOnce sync.Once
	admin     *url.URL // where to CREATE and DROP; test URLs differ only in the path
	setupErr  error
	banner    sync.Once

	// runID tells apart databases of test binaries sharing one server: go
	// test runs packages in parallel, and $AUTHQL_TEST_POSTGRES may be shared.
	runID   = fmt.Sprintf("%06x", rand.N(1<<24))
	counter atomic.Int64

	watchdog       *exec.Cmd
	watchdogStdin  *os.File // closing it tells the watchdog to stop the cluster
	watchdogStderr bytes.Buffer
)

// Main runs the package's tests, then stops the cluster, if one was started,
// and removes its directory. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// URL returns the URL of a new, empty database for tb alone, dropped when tb
// finishes. The first call starts the cluster; if that fails, URL skips tb,
// or fails it under CI=true or with $AUTHQL_TEST_POSTGRES set.
func URL(tb testing.TB) string {
	tb.Helper()
	if !mainCalled.Load() {
		tb.Fatal("pgtest: TestMain must run the tests through pgtest.Main, which stops the cluster")
	}
	setupOnce.Do(func() { admin, setupErr = setup() })
	if setupErr != nil {
		// A server named in $AUTHQL_TEST_POSTGRES was asked for: not reaching it is a failure.
		if os.Getenv("CI") == "true" || os.Getenv(envURL) != "" {
			tb.Fatalf("pgtest: %v", setupErr)
		}
		banner.Do(func() {
			line := strings.Repeat("!", 72)
			fmt.Fprintf(os.Stderr, "\n%s\npgtest: SKIP: tests that need PostgreSQL are skipped: %v\n%s\n\n", line, setupErr, line)
		})
		tb.Skipf("pgtest: SKIP: %v", setupErr)
	}

	name := dbName(tb.Name())
	ident := pgx.Identifier{name}.Sanitize()
	if err := execAdmin("CREATE DATABASE " + ident); err != nil {
		tb.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		// FORCE ends connections the test left open, which would block DROP.
		err := execAdmin("DROP DATABASE " + ident + " WITH (FORCE)")
		if err != nil && !stopped.Load() {
			tb.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	u := *admin
	u.Path = "/" + name
	return u.String()
}

// dbName makes a database name, unique and a valid identifier, from a test name.
func dbName(test string) string {
	b := []byte(strings.ToLower(test))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	// Identifiers stop at 63 bytes; this leaves room for the suffix.
	if len(b) > 32 {
		b = b[:32]
	}
	return fmt.Sprintf("t_%s_%s_%d", b, runID, counter.Add(1))
}

// execAdmin runs one statement on a connection of its own: a pgx.Conn is not
// safe for concurrent use, and parallel tests create databases at once.
func execAdmin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// setup returns the URL of the server to make databases on: $AUTHQL_TEST_POSTGRES's,
// or that of a cluster it starts.
func setup() (*url.URL, error) {
	if s := os.Getenv(envURL); s != "" {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// Not quoting s or err, which quotes s: it may hold a password.
			return nil, fmt.Errorf("$%s must be a postgres:// URL", envURL)
		}
		return u, nil
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	return start(bin)
}

// binDir returns the directory holding initdb and pg_ctl: pg_config's, else
// that of the newest Debian-packaged version, else the one on $PATH.
func binDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVersion := "", -1.0
	for _, p := range initdbs {
		dir := filepath.Dir(p)
		// Numerically, so that 10 beats 9.6.
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err == nil && v > bestVersion {
			best, bestVersion = dir, v
		}
	}
	if best != "" {
		return best, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL is not installed: apt-get install postgresql, or set " + envURL)
}

// start makes and starts a cluster listening only on a Unix socket in a
// fresh directory, which also holds the data directory and the server log.
func start(bin string) (*url.URL, error) {
	dir, err := os.MkdirTemp("", "authql-pg-")
	if err != nil {
		return nil, err
	}
	// PostgreSQL refuses to run as root, so root runs it as user postgres,
	// who must own dir. dir is not under t.TempDir, whose parent only root may
	// enter. It stays mode 0700: the socket lets anyone in as superuser.
	var runAs []string
	if os.Geteuid() == 0 {
		if err := chownToPostgres(dir); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	command := func(name string, args ...string) *exec.Cmd {
		argv := append(append(slices.Clone(runAs), filepath.Join(bin, name)), args...)
		c := exec.Command(argv[0], argv[1:]...)
		c.Dir = dir // postgres may not be allowed into the test's directory
		return c
	}
	data, logFile := filepath.Join(dir, "data"), filepath.Join(dir, "log")
	if err := startWatchdog(dir, command("pg_ctl", "-D", data, "-m", "immediate", "stop").Args); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	failed := func(step string, out []byte, err error) error {
		serverLog, _ := os.ReadFile(logFile)
		stop()
		return fmt.Errorf("the PostgreSQL cluster did not start: %s: %v\n%s\nserver log:\n%s", step, err, out, serverLog)
	}

	// No fsync anywhere: the cluster does not outlive the tests.
	out, err := command("initdb", "-D", data, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, failed("initdb", out, err)
	}
	// dir is the socket directory too, keeping the socket's path short of
	// the 107-byte limit. pg_ctl hands -o to a shell, hence the quotes.
	opts := "-c listen_addresses= -k '" + dir + "' -c fsync=off -c synchronous_commit=off" +
		" -c full_page_writes=off -c max_connections=300"
	out, err = command("pg_ctl", "-w", "-D", data, "-l", logFile, "-o", opts, "start").CombinedOutput()
	if err != nil {
		return nil, failed("pg_ctl start", out, err)
	}
	return &url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Path:     "/postgres",
		RawQuery: url.Values{"host": {dir}}.Encode(),
	}, nil
}

// chownToPostgres gives dir to user postgres, which the Debian package creates.
func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return errors.New("running as root, which PostgreSQL refuses, and there is no user postgres to run it as: " +
			"useradd --system postgres, or set " + envURL)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

// startWatchdog starts a shell that, once its stdin closes, runs stopCmd and
// removes dir. Only this process holds the pipe's other end, so the cluster
// goes when the test binary does, however it ends: through Main, a panic, a
// test timeout or a kill.
func startWatchdog(dir string, stopCmd []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	const script = `read -r _; d=$1; shift; "$@" >/dev/null; s=$?; rm -rf -- "$d"; exit $s`
	c := exec.Command("sh", append([]string{"-c", script, "sh", dir}, stopCmd...)...)
	c.Stdin = r
	c.Stderr = &watchdogStderr
	c.Dir = "/" // postgres may not be allowed into the test's directory, and dir goes
	// A process group of its own, so that a ^C to the tests does not kill it too.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		w.Close()
		return err
	}
	watchdog, watchdogStdin = c, w
	return nil
}

// stop stops the cluster, if one was started, removes its directory, and
// waits for both.
func stop() error {
	if watchdog == nil {
		return nil
	}
	stopped.Store(true)
	watchdogStdin.Close()
	err := watchdog.Wait()
	watchdog = nil
	if err != nil {
		return fmt.Errorf("stopping the PostgreSQL cluster: %v\n%s", err, watchdogStderr.Bytes())
	}
	return nil
}
