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
//
// Programs that are not tests (the load benchmark) use a Cluster directly.
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

// EnvURL names the variable holding the URL of an existing server to use
// instead of a cluster of our own. Its user must be allowed to CREATE DATABASE.
const EnvURL = "AUTHQL_TEST_POSTGRES"

// superuser is the role initdb makes; trust authentication on a socket only
// this user (or root) can reach means it needs no password.
const superuser = "authql"

var (
	mainCalled atomic.Bool

	setupOnce sync.Once
	cluster   *Cluster
	setupErr  error
	banner    sync.Once

	// runID tells apart databases of test binaries sharing one server: go
	// test runs packages in parallel, and $AUTHQL_TEST_POSTGRES may be shared.
	runID   = fmt.Sprintf("%06x", rand.N(1<<24))
	counter atomic.Int64
)

// Main runs the package's tests, then stops the cluster, if one was started,
// and removes its directory. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
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
	setupOnce.Do(func() { cluster, setupErr = setup() })
	if setupErr != nil {
		// A server named in $AUTHQL_TEST_POSTGRES was asked for: not reaching it is a failure.
		if os.Getenv("CI") == "true" || os.Getenv(EnvURL) != "" {
			tb.Fatalf("pgtest: %v", setupErr)
		}
		banner.Do(func() {
			line := strings.Repeat("!", 72)
			fmt.Fprintf(os.Stderr, "\n%s\npgtest: SKIP: tests that need PostgreSQL are skipped: %v\n%s\n\n", line, setupErr, line)
		})
		tb.Skipf("pgtest: SKIP: %v", setupErr)
	}

	name := dbName(tb.Name())
	u, err := cluster.CreateDatabase(context.Background(), name)
	if err != nil {
		tb.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		err := cluster.DropDatabase(context.Background(), name)
		if err != nil && !cluster.stopped.Load() {
			tb.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return u
}

// setup returns the server to make the tests' databases on: $AUTHQL_TEST_POSTGRES's,
// or a cluster it starts.
func setup() (*Cluster, error) {
	if s := os.Getenv(EnvURL); s != "" {
		c, err := Existing(s)
		if err != nil {
			return nil, fmt.Errorf("$%s must be a postgres:// URL", EnvURL)
		}
		return c, nil
	}
	return Start()
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

// Cluster is a PostgreSQL server to make databases on: a throwaway cluster
// that Start made, or an existing server that Existing names.
type Cluster struct {
	admin *url.URL // where to CREATE and DROP; database URLs differ only in the path

	// The watchdog of a cluster Start made, nil for an existing server.
	watchdog       *exec.Cmd
	watchdogStdin  *os.File // closing it tells the watchdog to stop the cluster
	watchdogStderr bytes.Buffer
	stopped        atomic.Bool // the cluster is gone, so dropping databases cannot work
}

// Existing returns the server at rawURL (postgres://…), whose user must be
// allowed to CREATE DATABASE. Its Stop does nothing.
func Existing(rawURL string) (*Cluster, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not quoting rawURL or err, which quotes it: it may hold a password.
		return nil, errors.New("the server's URL must be a postgres:// URL")
	}
	return &Cluster{admin: u}, nil
}

// Start makes and starts a throwaway cluster, listening only on a Unix
// socket, with fsync off: its data does not outlive it. Stop, or the end of
// this process however it comes, stops it and removes its directory.
func Start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	return start(bin)
}

// CreateDatabase creates the empty database name and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := c.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	u := *c.admin
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops database name, ending the connections still open to it.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	// FORCE ends the connections, which would block DROP.
	return c.exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// exec runs one statement on a connection of its own: a pgx.Conn is not
// safe for concurrent use, and parallel tests create databases at once.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.admin.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
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
	return "", errors.New("PostgreSQL is not installed: apt-get install postgresql, or set " + EnvURL)
}

// start makes and starts a cluster listening only on a Unix socket in a
// fresh directory, which also holds the data directory and the server log.
func start(bin string) (*Cluster, error) {
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
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir // postgres may not be allowed into the caller's directory
		return cmd
	}
	data, logFile := filepath.Join(dir, "data"), filepath.Join(dir, "log")
	c := &Cluster{admin: &url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Path:     "/postgres",
		RawQuery: url.Values{"host": {dir}}.Encode(),
	}}
	if err := c.startWatchdog(dir, command("pg_ctl", "-D", data, "-m", "immediate", "stop").Args); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	failed := func(step string, out []byte, err error) error {
		serverLog, _ := os.ReadFile(logFile)
		c.Stop()
		return fmt.Errorf("the PostgreSQL cluster did not start: %s: %v\n%s\nserver log:\n%s", step, err, out, serverLog)
	}

	// No fsync anywhere: the cluster does not outlive this process.
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
	return c, nil
}

// chownToPostgres gives dir to user postgres, which the Debian package creates.
func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return errors.New("running as root, which PostgreSQL refuses, and there is no user postgres to run it as: " +
			"useradd --system postgres, or set " + EnvURL)
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
// goes when the process does, however it ends: through Main or Stop, a
// panic, a test timeout or a kill.
func (c *Cluster) startWatchdog(dir string, stopCmd []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	const script = `read -r _; d=$1; shift; "$@" >/dev/null; s=$?; rm -rf -- "$d"; exit $s`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh", dir}, stopCmd...)...)
	cmd.Stdin = r
	cmd.Stderr = &c.watchdogStderr
	cmd.Dir = "/" // postgres may not be allowed into the caller's directory, and dir goes
	// A process group of its own, so that a ^C to this process does not kill it too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	c.watchdog, c.watchdogStdin = cmd, w
	return nil
}

// Stop stops the cluster, if Start made it, removes its directory, and
// waits for both. Stopping it again does nothing.
func (c *Cluster) Stop() error {
	if c.watchdog == nil {
		return nil
	}
	c.stopped.Store(true)
	c.watchdogStdin.Close()
	err := c.watchdog.Wait()
	c.watchdog = nil
	if err != nil {
		return fmt.Errorf("stopping the PostgreSQL cluster: %v\n%s", err, c.watchdogStderr.Bytes())
	}
	return nil
}
