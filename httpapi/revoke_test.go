package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"authql/auth"
	"authql/auth/authtest"
)

// TestRevoke is RFC 7009 section 2.
func TestRevoke(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword)
	s.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	login := func(authorization string) authtest.Tokens {
		t.Helper()
		resp, body := s.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, authorization)
		if resp.StatusCode != 200 {
			t.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		var tok authtest.Tokens
		json.Unmarshal(body, &tok)
		return tok
	}
	refreshStatus := func(tok authtest.Tokens, authorization string) int {
		resp, _ := s.postOAuth("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, authorization)
		return resp.StatusCode
	}

	t.Run("refresh token ends its session", func(t *testing.T) {
		tok, other := login(""), login("")
		resp, body := s.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, "")
		authtest.WantOAuth(t, resp, body, 200, "")
		if st := s.queryStatus(tok.AccessToken); st != 401 {
			t.Errorf("access token of the session: %d; want 401", st)
		}
		if st := refreshStatus(tok, ""); st != 400 {
			t.Errorf("refresh token: %d; want 400", st)
		}
		if st := s.queryStatus(other.AccessToken); st != 200 {
			t.Errorf("another session: %d; want 200", st)
		}
	})
	t.Run("access token ends its session", func(t *testing.T) {
		tok := login("")
		resp, body := s.postOAuth("/revoke", url.Values{"token": {tok.AccessToken}}, "")
		authtest.WantOAuth(t, resp, body, 200, "")
		if st := refreshStatus(tok, ""); st != 400 {
			t.Errorf("refresh token of the session: %d; want 400", st)
		}
	})
	t.Run("wrong hint", func(t *testing.T) {
		tok := login("")
		resp, body := s.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}, "")
		authtest.WantOAuth(t, resp, body, 200, "")
		if st := refreshStatus(tok, ""); st != 400 {
			t.Errorf("refresh token: %d; want 400", st)
		}
	})
	t.Run("confidential client revokes its token", func(t *testing.T) {
		tok := login(authtest.BasicAuth("app", appSecret))
		resp, body := s.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}}, "")
		authtest.WantOAuth(t, resp, body, 400, "unauthorized_client")
		resp, body = s.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}}, authtest.BasicAuth("app", "wrong secret"))
		authtest.WantOAuth(t, resp, body, 401, "invalid_client")
		if st := s.queryStatus(tok.AccessToken); st != 200 {
			t.Errorf("after refused revocations: %d; want 200", st)
		}
		resp, body = s.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}}, authtest.BasicAuth("app", appSecret))
		authtest.WantOAuth(t, resp, body, 200, "")
		if st := s.queryStatus(tok.AccessToken); st != 401 {
			t.Errorf("after revocation: %d; want 401", st)
		}
	})

	revoked := login("")
	s.postOAuth("/revoke", url.Values{"token": {revoked.RefreshToken}}, "")
	for _, tc := range []struct {
		name   string
		method string
		target string
		form   url.Values
		status int
		code   string
	}{
		{name: "unknown token", form: url.Values{"token": {"no-such-token"}}, status: 200},
		{name: "already revoked", form: url.Values{"token": {revoked.RefreshToken}}, status: 200},
		{name: "already revoked access token", form: url.Values{"token": {revoked.AccessToken}}, status: 200},
		{name: "unknown hint", form: url.Values{"token": {"x"}, "token_type_hint": {"id_token"}}, status: 200},
		{name: "token missing", form: url.Values{"token_type_hint": {"refresh_token"}}, status: 400, code: "invalid_request"},
		{name: "token repeated", form: url.Values{"token": {"a", "b"}}, status: 400, code: "invalid_request"},
		{name: "query string", target: "/revoke?token=x", form: url.Values{"token": {"x"}}, status: 400, code: "invalid_request"},
		{name: "GET", method: "GET", status: 405, code: "invalid_request"},
		{name: "unknown client with secret", form: url.Values{"token": {"x"}, "client_id": {"nope"}, "client_secret": {"whatever1"}}, status: 401, code: "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, target := tc.method, tc.target
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = "/revoke"
			}
			req := s.newRequest(method, target, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := s.do(req)
			authtest.WantOAuth(t, resp, body, tc.status, tc.code)
			if tc.status == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
}
