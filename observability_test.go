package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGracefulShutdown: cancelling run (SIGTERM in main) lets a request in
// flight finish, then run returns nil.
func TestGracefulShutdown(t *testing.T) {
	env := map[string]string{"DB_PATH": filepath.Join(t.TempDir(), "authql.db"), "BCRYPT_COST": "13"}
	getenv := func(k string) string { return env[k] }
	if err := run(context.Background(), []string{"authql", "migrate"}, getenv,
		strings.NewReader(""), new(strings.Builder), new(strings.Builder)); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"authql", "user", "add", "-username", "alice"}, getenv,
		strings.NewReader(alicePassword), new(strings.Builder), new(strings.Builder)); err != nil {
		t.Fatal(err)
	}
	base, stop := startRun(t, env)

	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.PostForm(base+"/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	time.Sleep(100 * time.Millisecond) // the login is now hashing at cost 13
	if err := stop(); err != nil {
		t.Errorf("run returned %v; want nil", err)
	}
	if r := <-done; r.err != nil || r.status != 200 {
		t.Errorf("the request in flight: %d %v; want 200", r.status, r.err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still accepts connections after shutdown")
	}
}
