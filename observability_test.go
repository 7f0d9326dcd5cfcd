package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"authql/auth"
)

// TestLogsCarryNoSecrets drives every path that logs (requests, logins,
// refresh reuse, internal errors) and then searches the whole log for the
// passwords, secrets, tokens and hashes involved.
func TestLogsCarryNoSecrets(t *testing.T) {
	ta := newTestApp(t)
	secrets := []string{alicePassword, "wrong password 123", appSecret, "a brand new password"}
	ta.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	ta.addUser("alice", alicePassword, "users:read")

	tok := ta.login("alice", alicePassword)
	ta.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {secrets[1]}}, "")
	ta.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, basicAuth("app", appSecret))
	ta.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, basicAuth("app", "wrong "+appSecret))
	_, resp := ta.graphql("", `mutation($p: String!) { signup(input: {username: "bob", password: $p}) { accessToken refreshToken } }`, map[string]any{"p": alicePassword})
	var bob authPayload
	decode(t, resp, "signup", &bob)
	ta.graphql(bob.AccessToken, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }`,
		map[string]any{"c": alicePassword, "n": secrets[3]})
	_, body := ta.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	ta.clock.Advance(time.Minute)
	ta.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}) // reuse: session revoked, logged
	req, _ := http.NewRequest(http.MethodPost, ta.URL+"/query?access_token="+tok.AccessToken, strings.NewReader(`{"query":"{ me { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	ta.do(req)
	ta.postOAuth("/revoke", url.Values{"token": {bob.RefreshToken}}, "")
	ta.app.db.Close()
	ta.graphql("", `mutation($p: String!) { login(username: "alice", password: $p) { accessToken } }`, map[string]any{"p": alicePassword})

	logs := ta.logs.String()
	if !strings.Contains(logs, "refresh token reused") || !strings.Contains(logs, "internal error") || !strings.Contains(logs, "user_id=") {
		t.Fatalf("the flow did not log what it should have:\n%s", logs)
	}
	for _, s := range append(secrets, tok.AccessToken, tok.RefreshToken, bob.AccessToken, bob.RefreshToken, string(body)) {
		for _, part := range []string{s, s[:min(len(s), 16)]} {
			if strings.Contains(logs, part) {
				t.Errorf("log contains a secret (%q…):\n%s", part[:min(len(part), 8)], logs)
			}
		}
	}
	if strings.Contains(logs, "$2a$") || strings.Contains(logs, "$2b$") {
		t.Errorf("log contains a bcrypt hash:\n%s", logs)
	}
}

// TestGracefulShutdown: cancelling run (SIGTERM in main) lets a request in
// flight finish, then run returns nil.
func TestGracefulShutdown(t *testing.T) {
	env := map[string]string{"DB_PATH": filepath.Join(t.TempDir(), "authql.db"), "BCRYPT_COST": "13"}
	getenv := func(k string) string { return env[k] }
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
