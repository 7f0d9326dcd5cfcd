package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

// TestSigningKeyDoesNotDeriveRefreshTokens: whoever holds the access-token
// signing key cannot walk a session's refresh tokens from an old one to the
// next. (The root package's TestStoredSigningKeyDoesNotDeriveRefreshTokens
// checks the same of the key the server stores when JWT_SECRET is unset.)
func TestSigningKeyDoesNotDeriveRefreshTokens(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword)
	first := ts.login("alice", alicePassword)
	guess := authtest.LegacyChild(ts.secret, first.RefreshToken)
	resp, body := ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), guess) {
		t.Fatal("the child refresh token is derived from the signing key")
	}
	resp, body = ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {guess}})
	authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")
}

// TestAdminMayGrantOnlyScopesTheirTokenCarries: users:write lets an
// administrator add or remove only scopes that their own token carries, and
// never their own. (That the CLI may grant any is the root package's
// TestCLIMayGrantAnyScope.)
func TestAdminMayGrantOnlyScopesTheirTokenCarries(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.addUser("admin", alicePassword, "users:write", "users:read")
	adminToken := ts.login("admin", alicePassword).AccessToken
	alice := ts.addUser("alice", alicePassword)
	boss := ts.addUser("boss", alicePassword, "billing:admin")

	const setScopes = `mutation($id: ID!, $scopes: [String!]!) { setUserScopes(id: $id, scopes: $scopes) { scopes } }`
	set := func(token, id string, scopes ...string) authtest.GraphQLResponse {
		t.Helper()
		_, resp := ts.graphql(token, setScopes, map[string]any{"id": id, "scopes": append([]string{}, scopes...)})
		return resp
	}
	forbidden := func(resp authtest.GraphQLResponse, missing ...string) {
		t.Helper()
		if code := resp.Code(t); code != "FORBIDDEN" {
			t.Fatalf("code = %s (%+v); want FORBIDDEN", code, resp.Errors)
		}
		if got := fmt.Sprint(resp.Errors[0].Extensions["requiredScopes"]); len(missing) > 0 && got != fmt.Sprint(missing) {
			t.Errorf("requiredScopes = %s; want %v", got, missing)
		}
	}

	if resp := set(adminToken, alice.ID, "users:read"); len(resp.Errors) != 0 {
		t.Fatalf("granting a scope the admin carries: %+v", resp.Errors)
	}
	forbidden(set(adminToken, alice.ID, "users:read", "billing:admin"), "billing:admin")
	forbidden(set(adminToken, alice.ID, "users:read", "users:write", "billing:admin"), "billing:admin")
	forbidden(set(adminToken, boss.ID), "billing:admin") // removing counts too
	forbidden(set(adminToken, admin.ID, "users:write", "users:read", "billing:admin"))
	forbidden(set(adminToken, admin.ID)) // not even to drop their own

	// What counts is the token, not the account: a token asked for with
	// users:write only cannot hand out users:read.
	resp, body := ts.postToken(url.Values{"grant_type": {"password"}, "username": {"admin"},
		"password": {alicePassword}, "scope": {"users:write"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login with scope: %d %s", resp.StatusCode, body)
	}
	var narrow authtest.Tokens
	if err := json.Unmarshal(body, &narrow); err != nil {
		t.Fatal(err)
	}
	forbidden(set(narrow.AccessToken, alice.ID), "users:read")

	for _, u := range []*auth.User{alice, boss, admin} {
		got, err := ts.svc.UserByUsername(context.Background(), u.Username)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"alice": "users:read", "boss": "billing:admin", "admin": "users:write users:read"}[u.Username]
		if auth.FormatScope(got.Scopes) != want {
			t.Errorf("%s's scopes = %q; want %q", u.Username, auth.FormatScope(got.Scopes), want)
		}
	}
}

// loginFrom sends a wrong or right password for username over /token as if
// from addr (the test server trusts X-Forwarded-For).
func (ts *testServer) loginFrom(addr, username, password string) (*http.Response, []byte) {
	ts.t.Helper()
	form := authtest.PasswordGrant(username, password)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", addr)
	return ts.do(req)
}

// TestAttackerCannotLockUserOut: failures from one address use up the
// username's budget for new addresses only; the user still logs in from an
// address they logged in from within 30 days, and a throttled real account
// looks exactly like a throttled unknown one.
func TestAttackerCannotLockUserOut(t *testing.T) {
	ts := newTestServer(t, func(c *config) {
		c.http.ClientIPHeader = "X-Forwarded-For"
		c.auth.LoginUserLimit = auth.Limit{N: 3, Per: time.Minute}
		c.auth.LoginPairLimit = auth.Limit{N: 3, Per: time.Minute}
	})
	ts.addUser("alice", alicePassword)
	const home, home6, attacker, attacker2, newPlace = "203.0.113.1", "2001:db8:1:2::1", "198.51.100.2", "198.51.100.3", "192.0.2.3"
	for _, addr := range []string{home, home6} {
		if resp, body := ts.loginFrom(addr, "alice", alicePassword); resp.StatusCode != http.StatusOK {
			t.Fatalf("first login from %s: %d %s", addr, resp.StatusCode, body)
		}
	}
	ts.clock.Advance(29 * 24 * time.Hour)

	for _, name := range []string{"alice", "nobody"} {
		for i := range 3 {
			resp, body := ts.loginFrom(attacker, name, fmt.Sprintf("guess %d", i))
			authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")
		}
		resp, body := ts.loginFrom(attacker, name, "one more")
		authtest.WantThrottled(t, resp, body)
		resp, body = ts.loginFrom(attacker2, name, "from another address")
		authtest.WantThrottled(t, resp, body) // the username's budget is spent
	}

	if resp, body := ts.loginFrom(home, "alice", alicePassword); resp.StatusCode != http.StatusOK {
		t.Errorf("alice at home while attacked: %d %s", resp.StatusCode, body)
	}
	if resp, body := ts.loginFrom("2001:db8:1:2:aaaa::9", "alice", alicePassword); resp.StatusCode != http.StatusOK {
		t.Errorf("alice in her IPv6 /64 while attacked: %d %s", resp.StatusCode, body)
	}
	realResp, realBody := ts.loginFrom(newPlace, "alice", alicePassword)
	authtest.WantThrottled(t, realResp, realBody)
	fakeResp, fakeBody := ts.loginFrom(newPlace, "nobody", alicePassword)
	if string(realBody) != string(fakeBody) || realResp.StatusCode != fakeResp.StatusCode ||
		realResp.Header.Get("Retry-After") != fakeResp.Header.Get("Retry-After") {
		t.Errorf("throttled real and unknown users differ:\n%d %s %s\n%d %s %s",
			realResp.StatusCode, realResp.Header.Get("Retry-After"), realBody,
			fakeResp.StatusCode, fakeResp.Header.Get("Retry-After"), fakeBody)
	}

	// Known means within 30 days of the last success from there.
	ts.clock.Advance(31 * 24 * time.Hour)
	for i := range 3 {
		ts.loginFrom(attacker, "alice", fmt.Sprintf("later guess %d", i))
	}
	resp, body := ts.loginFrom(home6, "alice", alicePassword)
	authtest.WantThrottled(t, resp, body)
}

// TestSignupIsThrottledPerAddress: signup tells whether a name is taken, so
// every signup executed counts against its address, aliases included.
func TestSignupIsThrottledPerAddress(t *testing.T) {
	ts := newTestServer(t, func(c *config) {
		c.http.ClientIPHeader = "X-Forwarded-For"
		c.auth.SignupAddrLimit = auth.Limit{N: 3, Per: time.Hour}
	})
	ts.addUser("alice", alicePassword)
	var doc strings.Builder
	doc.WriteString("mutation($p: String!) {")
	for i := range 6 {
		fmt.Fprintf(&doc, ` s%d: signup(input: {username: "alice", password: $p}) { accessToken }`, i)
	}
	doc.WriteString(" }")
	_, resp := ts.graphql("", doc.String(), map[string]any{"p": alicePassword})
	codes := map[string]int{}
	for _, e := range resp.Errors {
		codes[fmt.Sprint(e.Extensions["code"])]++
	}
	if codes["BAD_USER_INPUT"] != 3 || codes["RATE_LIMITED"] != 3 {
		t.Errorf("codes = %v; want 3 BAD_USER_INPUT (taken) and 3 RATE_LIMITED", codes)
	}
	body := `{"query":"mutation { signup(input: {username: \"bob\", password: \"correct horse battery\"}) { accessToken } }"}`
	for addr, want := range map[string]string{"198.51.100.7": "", "127.0.0.1": "RATE_LIMITED"} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if addr != "127.0.0.1" {
			req.Header.Set("X-Forwarded-For", addr)
		}
		_, raw := ts.do(req)
		if want == "" && strings.Contains(string(raw), "errors") || want != "" && !strings.Contains(string(raw), want) {
			t.Errorf("signup from %s: %s; want %q", addr, raw, want)
		}
	}
}

// TestClientSecretGuessingIsThrottled: wrong client secrets count per client
// id and per address, at /token and /revoke alike, and past the limit even
// the right secret waits.
func TestClientSecretGuessingIsThrottled(t *testing.T) {
	ts := newTestServer(t, func(c *config) {
		c.http.ClientIPHeader = "X-Forwarded-For"
		c.auth.ClientAuthLimit = auth.Limit{N: 3, Per: time.Minute}
		c.auth.LoginAddrLimit = auth.Limit{N: 5, Per: time.Minute}
	})
	ts.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	post := func(path, addr string, form url.Values, authorization string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", authorization)
		req.Header.Set("X-Forwarded-For", addr)
		return ts.do(req)
	}
	grant := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	revoke := url.Values{"token": {"x"}}
	for i, path := range []string{"/token", "/revoke", "/token"} {
		resp, body := post(path, fmt.Sprintf("198.51.100.%d", i), map[string]url.Values{"/token": grant, "/revoke": revoke}[path], authtest.BasicAuth("app", "guess"))
		authtest.WantOAuth(t, resp, body, http.StatusUnauthorized, "invalid_client")
	}
	for _, path := range []string{"/token", "/revoke"} {
		resp, body := post(path, "198.51.100.9", revoke, authtest.BasicAuth("app", appSecret))
		authtest.WantThrottled(t, resp, body)
	}

	// Per address: five wrong secrets for five ids, then a sixth id.
	for i := range 5 {
		resp, body := post("/token", "203.0.113.5", grant, authtest.BasicAuth(fmt.Sprintf("client%d", i), "guess"))
		authtest.WantOAuth(t, resp, body, http.StatusUnauthorized, "invalid_client")
	}
	resp, body := post("/token", "203.0.113.5", grant, authtest.BasicAuth("client9", "guess"))
	authtest.WantThrottled(t, resp, body)
}

// TestSecurityEventsAreLogged: failed logins, throttling, failed client
// authentication, refresh token reuse and administrative changes each leave
// a structured line with the request id and the client address.
func TestSecurityEventsAreLogged(t *testing.T) {
	ts := newTestServer(t, func(c *config) { c.auth.LoginUserLimit = auth.Limit{N: 1, Per: time.Minute} })
	alice := ts.addUser("alice", alicePassword)
	ts.addUser("admin", alicePassword, "users:write", "users:read")
	ts.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	tok := ts.login("alice", alicePassword)
	adminToken := ts.login("admin", alicePassword).AccessToken

	ts.wrongLogin("alice")
	ts.wrongLogin("nobody")
	ts.wrongLogin("nobody") // throttled
	ts.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, authtest.BasicAuth("app", "guess"))
	ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	ts.clock.Advance(time.Minute)
	ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	ts.graphql(adminToken, `mutation($id: ID!) { setUserScopes(id: $id, scopes: ["users:read"]) { id } }`, map[string]any{"id": alice.ID})
	ts.graphql(adminToken, `mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }`, map[string]any{"id": alice.ID})

	logs := ts.logs.String()
	for _, want := range []string{
		"event=login_failed", "event=login_throttled", "event=client_auth_failed",
		"event=refresh_token_reused", "event=user_scopes_changed", "event=user_disabled_changed",
	} {
		line := ""
		for l := range strings.Lines(logs) {
			if strings.Contains(l, want) {
				line = l
				break
			}
		}
		if line == "" {
			t.Errorf("no %q in the log:\n%s", want, logs)
			continue
		}
		if !strings.Contains(line, "client=127.0.0.1") || !strings.Contains(line, "request_id=") {
			t.Errorf("%q lacks the client address or request id: %s", want, line)
		}
	}
	for l := range strings.Lines(logs) {
		if strings.Contains(l, "event=user_scopes_changed") && !strings.Contains(l, "user_id="+alice.ID) {
			t.Errorf("admin change without its user: %s", l)
		}
	}
}
