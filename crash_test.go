package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startBinary starts the built program on a free port with a test
// environment (cheap bcrypt, generous limits) and env, and returns its base
// URL and process.
func startBinary(t *testing.T, dbPath string, env ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(authqlBinary(t), "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DB_PATH="+dbPath, "BCRYPT_COST=4", "REFRESH_REUSE_GRACE=5m",
		"LOGIN_ADDR_LIMIT=100000/1m", "SIGNUP_ADDR_LIMIT=100000/1m", "BCRYPT_WAIT=1m")
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the server printed no address: %v", err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "authql listening on ")
	if !ok {
		t.Fatalf("first line = %q", line)
	}
	return base, cmd
}

// account is what a client saw acknowledged: a user created, and the last
// refresh token it was handed.
type account struct {
	username string
	refresh  string
}

// TestCrashLosesNothingAcknowledged runs the real binary, drives signups and
// refreshes from several clients, kills the server with SIGKILL in the
// middle, restarts it, and checks that the database is intact and that
// every signup and refresh the clients saw acknowledged is there.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	base, cmd := startBinary(t, dbPath)
	accounts := stormUntilKilled(t, []string{base}, cmd)

	raw, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check = %q, %v", integrity, err)
	}
	raw.Close()

	base, _ = startBinary(t, dbPath)
	wantAcknowledged(t, base, accounts)
}

// stormUntilKilled drives signups and refreshes from six clients, spread
// over the servers at bases, until 300 writes were acknowledged (or 10s
// passed); then it kills victim, one of those servers, with SIGKILL, and
// returns the accounts whose signup and last refresh were acknowledged.
func stormUntilKilled(t *testing.T, bases []string, victim *exec.Cmd) map[string]*account {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(base string, query string, vars map[string]any) (map[string]struct{ RefreshToken string }, bool) {
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		resp, err := client.Post(base+"/query", "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, false
		}
		defer resp.Body.Close()
		var out struct {
			Data   map[string]struct{ RefreshToken string }
			Errors []any
		}
		if json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Errors) > 0 {
			return nil, false
		}
		return out.Data, true
	}

	var (
		mu       sync.Mutex
		accounts = map[string]*account{}
		acks     atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for w := range 6 {
		wg.Go(func() {
			var mine []*account
			for i := 0; !stop.Load(); i++ {
				base := bases[(w+i)%len(bases)]
				if i%2 == 0 || len(mine) == 0 {
					name := fmt.Sprintf("w%d-u%d", w, i)
					data, ok := post(base, `mutation($u: String!, $p: String!) { signup(input: {username: $u, password: $p}) { refreshToken } }`,
						map[string]any{"u": name, "p": alicePassword})
					if ok {
						a := &account{username: name, refresh: data["signup"].RefreshToken}
						mine = append(mine, a)
						mu.Lock()
						accounts[name] = a
						mu.Unlock()
						acks.Add(1)
					}
					continue
				}
				a := mine[i%len(mine)]
				data, ok := post(base, `mutation($r: String!) { refreshToken(refreshToken: $r) { refreshToken } }`, map[string]any{"r": a.refresh})
				if ok {
					mu.Lock()
					a.refresh = data["refreshToken"].RefreshToken
					mu.Unlock()
					acks.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for acks.Load() < 300 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := victim.Process.Kill(); err != nil { // SIGKILL, mid-load
		t.Fatal(err)
	}
	victim.Wait()
	stop.Store(true)
	wg.Wait()
	if len(accounts) < 20 {
		t.Fatalf("only %d signups before the kill; the load did not run", len(accounts))
	}
	t.Logf("%d acknowledged writes (%d signups) before SIGKILL", acks.Load(), len(accounts))
	return accounts
}

// wantAcknowledged checks, through the server at base, that every account
// logs in and that its last acknowledged refresh token refreshes.
func wantAcknowledged(t *testing.T, base string, accounts map[string]*account) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, a := range accounts {
		resp, err := client.PostForm(base+"/token", url.Values{"grant_type": {"password"}, "username": {a.username}, "password": {alicePassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("acknowledged signup %s: login %d after the kill", a.username, resp.StatusCode)
		}
		resp, err = client.PostForm(base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.refresh}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("acknowledged refresh token of %s: %d after the kill", a.username, resp.StatusCode)
		}
	}
}

// TestSIGTERMClosesCleanly: the real binary exits 0 on SIGTERM and closes
// the database, which checkpoints and removes the WAL file.
func TestSIGTERMClosesCleanly(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	base, cmd := startBinary(t, dbPath)
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := os.Stat(dbPath + "-wal"); err != nil {
		t.Fatalf("no WAL file while running: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
	if _, err := os.Stat(dbPath + "-wal"); !os.IsNotExist(err) {
		t.Errorf("WAL file left after shutdown (%v): the database was not closed", err)
	}
}
