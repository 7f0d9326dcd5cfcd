package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"authql/auth/authtest"
)

// TestJSONLogDurations runs the server with LOG_FORMAT=json, sends one
// request, stops it, and reads the request line and the shutdown line:
// their durations are numbers of milliseconds under keys that say so, not
// slog's bare nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	env := map[string]string{
		"DB_PATH":          filepath.Join(t.TempDir(), "authql.db"),
		"BCRYPT_COST":      "4",
		"LOG_FORMAT":       "json",
		"SHUTDOWN_TIMEOUT": "2500ms",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	var stderr authtest.Logs
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"authql", "-addr", "127.0.0.1:0"}, func(k string) string { return env[k] },
			strings.NewReader(""), stdoutW, &stderr)
		stdoutW.Close()
	}()
	lines := bufio.NewScanner(stdoutR)
	if !lines.Scan() {
		t.Fatalf("run printed no address; err %v; stderr:\n%s", <-done, stderr.String())
	}
	go io.Copy(io.Discard, stdoutR)
	base, ok := strings.CutPrefix(lines.Text(), "authql listening on ")
	if !ok {
		t.Fatalf("first line = %q", lines.Text())
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}

	var request, shutdown map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		switch {
		case rec["msg"] == "request" && rec["path"] == "/healthz":
			request = rec
		case strings.HasPrefix(rec["msg"].(string), "shutting down"):
			shutdown = rec
		}
	}
	if request == nil || shutdown == nil {
		t.Fatalf("no request line or no shutdown line in:\n%s", stderr.String())
	}
	if _, ok := request["duration"]; ok {
		t.Errorf("request line has a unitless duration: %v", request)
	}
	// A loopback /healthz takes well under 10 s; in nanoseconds it would be
	// above 10,000 whatever the machine.
	if ms, ok := request["duration_ms"].(float64); !ok || ms < 0 || ms > 10_000 {
		t.Errorf("request duration_ms = %#v; want a number of milliseconds", request["duration_ms"])
	}
	if _, ok := shutdown["timeout"]; ok {
		t.Errorf("shutdown line has a unitless timeout: %v", shutdown)
	}
	if ms, ok := shutdown["timeout_ms"].(float64); !ok || ms != 2500 {
		t.Errorf("shutdown timeout_ms = %#v; want 2500 (SHUTDOWN_TIMEOUT=2500ms)", shutdown["timeout_ms"])
	}
}
