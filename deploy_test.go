package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitPath = "deploy/authql.service"

// unitSettings returns the assignments of section in the systemd unit
// text, each key with its values in order ("Key=" alone gives "").
func unitSettings(tb testing.TB, unit []byte, section string) map[string][]string {
	tb.Helper()
	settings := map[string][]string{}
	current := ""
	lines := bufio.NewScanner(bytes.NewReader(unit))
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			current = strings.Trim(line, "[]")
		case current == section:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				tb.Fatalf("%s: [%s] line without '=': %q", unitPath, section, line)
			}
			settings[key] = append(settings[key], value)
		}
	}
	return settings
}

// TestSystemdUnitSettings checks that deploy/authql.service starts the
// installed binary on a database in its state directory, confines it as
// the README says, and gives it longer to stop than authql takes.
func TestSystemdUnitSettings(t *testing.T) {
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	service := unitSettings(t, unit, "Service")
	for key, want := range map[string]string{
		"ExecStart":               "/usr/local/bin/authql",
		"DynamicUser":             "yes",
		"StateDirectory":          "authql",
		"UMask":                   "0077",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"RestrictNamespaces":      "yes",
		"RestrictRealtime":        "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectControlGroups":    "yes",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
	} {
		if got := service[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q; want exactly %q", key, got, want)
		}
	}
	if got := service["Environment"]; !slices.Contains(got, "DB_PATH=%S/authql/authql.db") {
		t.Errorf("Environment = %q; want DB_PATH=%%S/authql/authql.db, in the state directory", got)
	}
	if got := service["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter = %q; want @system-service first", got)
	}
	for _, example := range []string{"#Environment=ADDR=", "#Environment=PUBLIC_URL="} {
		if !bytes.Contains(unit, []byte("\n"+example)) {
			t.Errorf("no commented example %s… in the unit", example)
		}
	}
	// SHUTDOWN_TIMEOUT's default (README, Configuration): systemd must not
	// SIGKILL a server that is still finishing requests in flight.
	const shutdownTimeout = 15 * time.Second
	stop, err := time.ParseDuration(strings.Join(service["TimeoutStopSec"], ""))
	if err != nil || stop <= shutdownTimeout {
		t.Errorf("TimeoutStopSec = %q (%v); want a duration above SHUTDOWN_TIMEOUT's %v", service["TimeoutStopSec"], err, shutdownTimeout)
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, pointed
// at the binary the tests build (verify refuses an ExecStart that does not
// exist), and fails on anything it says: it warns of an unknown or
// misspelt directive, which systemd would ignore, but still exits 0. It
// also reports the exposure score of systemd-analyze security, and fails
// above 2.0.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	const installed = "\nExecStart=/usr/local/bin/authql\n"
	if !bytes.Contains(unit, []byte(installed)) {
		t.Fatalf("%s has no line ExecStart=/usr/local/bin/authql", unitPath)
	}
	copyPath := filepath.Join(t.TempDir(), "authql.service")
	unit = bytes.Replace(unit, []byte(installed), []byte("\nExecStart="+authqlBinary(t)+"\n"), 1)
	if err := os.WriteFile(copyPath, unit, 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}

	out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", copyPath).CombinedOutput()
	score := regexp.MustCompile(`Overall exposure level for authql\.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || score == nil {
		// An older systemd-analyze, without --offline (systemd 250).
		t.Logf("systemd-analyze security --offline: %v\n%s", err, out)
		return
	}
	exposure, _ := strconv.ParseFloat(string(score[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", exposure)
	if exposure > 2.0 {
		t.Errorf("exposure %.1f; want at most 2.0:\n%s", exposure, out)
	}
}
