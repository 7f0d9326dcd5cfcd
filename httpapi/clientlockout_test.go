package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

// TestAttackerCannotLockClientOut: wrong secrets from elsewhere spend a
// client id's budget for new addresses only; the client still
// authenticates from an address it authenticated from before, and an
// unregistered id typed by mistake is not logged.
func TestAttackerCannotLockClientOut(t *testing.T) {
	s := newServer(t, func(c config) {
		c.http.ClientIPHeader = "X-Real-IP"
		c.auth.ClientAuthLimit = auth.Limit{N: 3, Per: time.Hour}
	})
	s.addUser("alice", alicePassword)
	s.registerClient(auth.NewClient{ID: "backend", Secret: appSecret})
	token := func(addr, secret string) (*http.Response, []byte) {
		t.Helper()
		form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}
		req := s.newRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", authtest.BasicAuth("backend", secret))
		req.Header.Set("X-Real-IP", addr)
		return s.do(req)
	}
	const home, attacker, elsewhere = "203.0.113.10", "198.51.100.20", "192.0.2.30"
	if resp, body := token(home, appSecret); resp.StatusCode != http.StatusOK {
		t.Fatalf("first authentication: %d %s", resp.StatusCode, body)
	}
	for range 3 {
		resp, body := token(attacker, "a guess")
		authtest.WantOAuth(t, resp, body, http.StatusUnauthorized, "invalid_client")
	}
	resp, body := token(attacker, "one more guess")
	authtest.WantThrottled(t, resp, body)
	// Past the few minutes for which a secret bcrypt accepted is
	// remembered, so that the right secret is checked again.
	s.clock.Advance(6 * time.Minute)
	resp, body = token(elsewhere, appSecret)
	authtest.WantThrottled(t, resp, body)
	if resp, body := token(home, appSecret); resp.StatusCode != http.StatusOK {
		t.Errorf("the client at its usual address while attacked: %d %s", resp.StatusCode, body)
	}

	typo := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	s.postOAuth("/token", typo, authtest.BasicAuth("hunter2-secret-typed-here", "x"))
	if logs := s.logs.String(); strings.Contains(logs, "hunter2-secret-typed-here") {
		t.Errorf("an unregistered client id reached the log:\n%s", logs)
	}
}
