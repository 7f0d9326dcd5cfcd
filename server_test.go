package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"authql/auth/authtest"
)

// startRun runs the program as main does, serving on a free port, and
// returns its base URL and a function that stops it and returns run's error.
func startRun(t *testing.T, env map[string]string) (string, func() error) {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	var stderr authtest.Logs
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"authql", "-addr", "127.0.0.1:0"}, getenv, strings.NewReader(""), stdoutW, &stderr)
		stdoutW.Close()
	}()
	lines := bufio.NewScanner(stdoutR)
	if !lines.Scan() {
		cancel()
		t.Fatalf("run printed no address; err %v; stderr:\n%s", <-done, stderr.String())
	}
	go io.Copy(io.Discard, stdoutR)
	base, ok := strings.CutPrefix(lines.Text(), "authql listening on ")
	if !ok {
		t.Fatalf("first line = %q", lines.Text())
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

// TestRunEndToEnd goes through run() as a user would: start the server,
// check /healthz, add a user with the CLI while it runs, get a token from
// /token, query me; then restart and find the token still valid, because
// the generated secret is kept in the database.
func TestRunEndToEnd(t *testing.T) {
	env := map[string]string{
		"DB_PATH":     filepath.Join(t.TempDir(), "authql.db"),
		"BCRYPT_COST": "4",
	}
	base, stop := startRun(t, env)

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("/healthz = %d %s", resp.StatusCode, body)
	}

	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"authql", "user", "add", "-username", "alice", "-scopes", "users:read"},
		func(k string) string { return env[k] }, strings.NewReader(alicePassword+"\n"), &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "created user alice") {
		t.Fatalf("user add: %v; stdout %q; stderr %q", err, out.String(), errOut.String())
	}

	resp, err = http.PostForm(base+"/token", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok authtest.Tokens
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.Scope != "users:read" {
		t.Fatalf("/token = %d %+v", resp.StatusCode, tok)
	}
	me := func(base string) string {
		req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(`{"query":"{ me { username scopes } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want := `{"data":{"me":{"username":"alice","scopes":["users:read"]}}}`
	if got := me(base); got != want {
		t.Fatalf("me = %s; want %s", got, want)
	}
	if err := stop(); err != nil {
		t.Fatalf("run returned %v after cancel; want nil", err)
	}

	base, _ = startRun(t, env)
	if got := me(base); got != want {
		t.Errorf("me after restart = %s; want %s", got, want)
	}
}

// Invalid settings stop the program at start with a message naming them.
func TestConfigErrors(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "authql.db")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad duration in env", nil, map[string]string{"ACCESS_TOKEN_TTL": "soon"}, "ACCESS_TOKEN_TTL"},
		{"bad duration flag", []string{"-refresh-token-ttl", "soon"}, nil, "refresh-token-ttl"},
		{"negative ttl", []string{"-access-token-ttl", "-1m"}, nil, "ACCESS_TOKEN_TTL (-access-token-ttl): must be positive"},
		{"negative grace", nil, map[string]string{"REFRESH_REUSE_GRACE": "-1s"}, "REFRESH_REUSE_GRACE"},
		{"short secret", nil, map[string]string{"JWT_SECRET": "short"}, "JWT_SECRET (-jwt-secret): is 5 bytes; it must be at least 32"},
		{"bcrypt cost too low", nil, map[string]string{"BCRYPT_COST": "3"}, "BCRYPT_COST"},
		{"bcrypt cost too high", []string{"-bcrypt-cost", "32"}, nil, "BCRYPT_COST"},
		{"bcrypt cost not a number", nil, map[string]string{"BCRYPT_COST": "twelve"}, "BCRYPT_COST"},
		{"signup not a bool", nil, map[string]string{"SIGNUP": "maybe"}, "SIGNUP"},
		{"bad origin", nil, map[string]string{"CORS_ORIGINS": "app.example.com"}, "CORS_ORIGINS"},
		{"empty issuer flag", []string{"-jwt-issuer", ""}, nil, "JWT_ISSUER"},
		{"memory database", []string{"-db", ":memory:"}, nil, "DB_PATH"},
		{"unknown flag", []string{"-nope"}, nil, "-nope"},
		{"stray argument", []string{"-addr", ":0", "--", "extra"}, nil, "extra"},
		{"unwritable database", []string{"-db", "/proc/authql/authql.db"}, nil, "DB_PATH"},
		{"unusable address", []string{"-addr", "256.0.0.1:1"}, nil, "ADDR"},
		{"not a PostgreSQL URL", nil, map[string]string{"DATABASE_URL": "mysql://authql:hunter2@db/authql"},
			"DATABASE_URL (-database-url): want a URL that starts with postgres:// or postgresql://"},
		{"PostgreSQL without KEY_ENCRYPTION_KEY", nil, map[string]string{"DATABASE_URL": "postgres://authql:hunter2@127.0.0.1:1/authql"},
			"KEY_ENCRYPTION_KEY is required with DATABASE_URL"},
		{"PostgreSQL unreachable", nil, map[string]string{"DATABASE_URL": "postgres://authql:hunter2@127.0.0.1:1/authql",
			"KEY_ENCRYPTION_KEY": testKEK}, "database (DATABASE_URL)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"}
			for k, v := range tc.env {
				env[k] = v
			}
			var stderr bytes.Buffer
			err := run(context.Background(), append([]string{"authql"}, tc.args...),
				func(k string) string { return env[k] }, strings.NewReader(""), io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want one naming %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error()+stderr.String(), "hunter2") {
				t.Errorf("the message shows the URL's password: %v", err)
			}
		})
	}
}

// A flag wins over its environment variable.
func TestConfigFlagWinsOverEnv(t *testing.T) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("authql", flag.ContinueOnError)
	bound := cfg.bind(fs)
	env := map[string]string{"BCRYPT_COST": "3", "ACCESS_TOKEN_TTL": "5m", "SIGNUP": "false"}
	err := cfg.parse(fs, bound, []string{"-bcrypt-cost", "10"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.auth; a.BcryptCost != 10 || a.AccessTokenTTL != 5*time.Minute || !a.SignupClosed || a.RefreshTokenTTL != 720*time.Hour {
		t.Errorf("config = cost %d, ttl %v, signup closed %v, refresh %v; want 10, 5m, true, 720h",
			a.BcryptCost, a.AccessTokenTTL, a.SignupClosed, a.RefreshTokenTTL)
	}
}

func TestHealthzReportsDatabase(t *testing.T) {
	ta := newTestApp(t)
	get := func() (int, string) {
		resp, body := ta.do(mustRequest(t, http.MethodGet, ta.URL+"/healthz"))
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	if status, body := get(); status != 200 || body != `{"status":"ok"}` {
		t.Errorf("healthz = %d %s", status, body)
	}
	ta.app.db.Close()
	if status, body := get(); status != 503 || body != `{"status":"unavailable"}` {
		t.Errorf("healthz with the database closed = %d %s; want 503", status, body)
	}
}

func mustRequest(tb testing.TB, method, url string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// A boolean setting given as a bare flag means true; every setting names
// its expected form when its value has another.
func TestConfigForms(t *testing.T) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("authql", flag.ContinueOnError)
	bound := cfg.bind(fs)
	if err := cfg.parse(fs, bound, []string{"-introspection", "-playground=false"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if !cfg.graph.Introspection || cfg.http.Playground {
		t.Errorf("introspection %v, playground %v; want true, false", cfg.graph.Introspection, cfg.http.Playground)
	}
	for env, want := range map[string]string{
		"BCRYPT_COST":      `invalid BCRYPT_COST (-bcrypt-cost): want an integer 4..31; got "abc"`,
		"ACCESS_TOKEN_TTL": `invalid ACCESS_TOKEN_TTL (-access-token-ttl): want a duration such as 15m`,
		"SIGNUP":           `invalid SIGNUP (-signup): want true or false; got "abc"`,
		"LOGIN_USER_LIMIT": `invalid LOGIN_USER_LIMIT (-login-user-limit): want N/duration, such as "10/15m"; got "abc"`,
		"MAX_QUERY_BYTES":  `invalid MAX_QUERY_BYTES (-max-query-bytes): want a positive integer (bytes); got "abc"`,
		"LOG_FORMAT":       `invalid LOG_FORMAT (-log-format): want one of text, json; got "abc"`,
		"PUBLIC_URL":       `invalid PUBLIC_URL (-public-url): want an absolute http(s) URL`,
		"JWT_SECRET":       `invalid JWT_SECRET (-jwt-secret): is 3 bytes; it must be at least 32`,
	} {
		cfg := defaultConfig()
		fs := flag.NewFlagSet("authql", flag.ContinueOnError)
		err := cfg.parse(fs, cfg.bind(fs), nil, func(k string) string { return map[string]string{env: "abc"}[k] })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=abc: %v; want %q", env, err, want)
		}
		if env == "JWT_SECRET" && err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

// JWT_ISSUER defaults to PUBLIC_URL, so that the token iss is the issuer a
// resource server discovers in the metadata; an explicit JWT_ISSUER wins.
func TestIssuerDefaultsToPublicURL(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "authql"},
		{map[string]string{"PUBLIC_URL": "https://auth.example.com/"}, "https://auth.example.com"},
		{map[string]string{"PUBLIC_URL": "https://auth.example.com", "JWT_ISSUER": "urn:mine"}, "urn:mine"},
	} {
		cfg := defaultConfig()
		fs := flag.NewFlagSet("authql", flag.ContinueOnError)
		if err := cfg.parse(fs, cfg.bind(fs), nil, func(k string) string { return tc.env[k] }); err != nil {
			t.Fatal(err)
		}
		if cfg.auth.Issuer != tc.want {
			t.Errorf("%v: issuer %q; want %q", tc.env, cfg.auth.Issuer, tc.want)
		}
	}

	// Through the running server: the discovered issuer is the token's iss.
	base, _ := startRun(t, map[string]string{"DB_PATH": filepath.Join(t.TempDir(), "authql.db"), "BCRYPT_COST": "4",
		"PUBLIC_URL": "https://auth.example.com"})
	resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Issuer string }
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	gql, _ := json.Marshal(map[string]any{
		"query":     `mutation($p: String!) { signup(input: {username: "alice", password: $p}) { accessToken } }`,
		"variables": map[string]any{"p": alicePassword},
	})
	var signup authtest.GraphQLResponse
	resp, err = http.Post(base+"/query", "application/json", bytes.NewReader(gql))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&signup)
	resp.Body.Close()
	var payload struct{ AccessToken string }
	signup.Decode(t, "signup", &payload)
	parts := strings.Split(payload.AccessToken, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
	var iss struct{ Iss string }
	json.Unmarshal(claims, &iss)
	if meta.Issuer != "https://auth.example.com" || iss.Iss != meta.Issuer {
		t.Errorf("metadata issuer %q, token iss %q; want both https://auth.example.com", meta.Issuer, iss.Iss)
	}
}

// An IPv4-mapped TRUSTED_PROXIES entry matches the IPv4 peer it stands for.
func TestTrustedProxiesForms(t *testing.T) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("authql", flag.ContinueOnError)
	env := map[string]string{"TRUSTED_PROXIES": "::ffff:10.0.0.1, 192.0.2.0/24, ::ffff:198.51.100.0/120, 2001:db8::1"}
	if err := cfg.parse(fs, cfg.bind(fs), nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.http.TrustedProxies); got != "[10.0.0.1/32 192.0.2.0/24 198.51.100.0/24 2001:db8::1/128]" {
		t.Errorf("TRUSTED_PROXIES = %s", got)
	}
	if err := defaultConfigParse(map[string]string{"TRUSTED_PROXIES": "proxy.example.com"}); err == nil || !strings.Contains(err.Error(), "not an address or CIDR") {
		t.Errorf("a host name: %v", err)
	}
}

// defaultConfigParse parses env into the default configuration.
func defaultConfigParse(env map[string]string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("authql", flag.ContinueOnError)
	return cfg.parse(fs, cfg.bind(fs), nil, func(k string) string { return env[k] })
}
