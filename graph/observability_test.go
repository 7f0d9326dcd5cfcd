package graph_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

// TestLogsCarryNoSecrets drives every path that logs (requests, logins,
// refresh reuse, internal errors) and then searches the whole log for the
// passwords, secrets, tokens and hashes involved.
func TestLogsCarryNoSecrets(t *testing.T) {
	ts := newTestServer(t)
	secrets := []string{alicePassword, "wrong password 123", appSecret, "a brand new password"}
	ts.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	ts.addUser("alice", alicePassword, "users:read")

	tok := ts.login("alice", alicePassword)
	ts.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {secrets[1]}}, "")
	ts.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, authtest.BasicAuth("app", appSecret))
	ts.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, authtest.BasicAuth("app", "wrong "+appSecret))
	_, resp := ts.graphql("", `mutation($p: String!) { signup(input: {username: "bob", password: $p}) { accessToken refreshToken } }`, map[string]any{"p": alicePassword})
	var bob authPayload
	resp.Decode(t, "signup", &bob)
	ts.graphql(bob.AccessToken, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }`,
		map[string]any{"c": alicePassword, "n": secrets[3]})
	_, body := ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	ts.clock.Advance(time.Minute)
	ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}) // reuse: session revoked, logged
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query?access_token="+tok.AccessToken, strings.NewReader(`{"query":"{ me { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	ts.do(req)
	ts.postOAuth("/revoke", url.Values{"token": {bob.RefreshToken}}, "")
	ts.db.Close()
	ts.graphql("", `mutation($p: String!) { login(username: "alice", password: $p) { accessToken } }`, map[string]any{"p": alicePassword})

	logs := ts.logs.String()
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
