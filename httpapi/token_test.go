package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"authql/auth"
	"authql/auth/authtest"
)

// TestTokenWithOAuth2Client drives /token with golang.org/x/oauth2, the
// reference form client: the password grant, a refresh through a
// TokenSource, and errors as RetrieveError.
func TestTokenWithOAuth2Client(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword, "users:read")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.Client())

	for _, tc := range []struct {
		name     string
		clientID string
		style    oauth2.AuthStyle
	}{
		{"first-party client, no client_id", "", oauth2.AuthStyleInParams},
		{"public client_id in the body", "my-spa", oauth2.AuthStyleInParams},
		{"public client in HTTP Basic with no secret", "my-spa", oauth2.AuthStyleInHeader},
		{"auto-detected style", "my-cli", oauth2.AuthStyleAutoDetect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := &oauth2.Config{
				ClientID: tc.clientID,
				Endpoint: oauth2.Endpoint{TokenURL: s.URL + "/token", AuthStyle: tc.style},
			}
			tok, err := conf.PasswordCredentialsToken(ctx, "alice", alicePassword)
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.ExpiresIn != 900 {
				t.Errorf("token = type %q, refresh %q, expires_in %d; want Bearer, a refresh token, 900",
					tok.TokenType, tok.RefreshToken, tok.ExpiresIn)
			}
			if got := tok.Extra("scope"); got != "users:read" {
				t.Errorf("scope = %v; want users:read", got)
			}
			if d := time.Until(tok.Expiry); d < 14*time.Minute || d > 15*time.Minute {
				t.Errorf("expiry in %v; want about 15m", d)
			}
			wantUser(t, s, tok.AccessToken, "alice")

			stale := *tok
			stale.Expiry = time.Now().Add(-time.Minute)
			fresh, err := conf.TokenSource(ctx, &stale).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
				t.Error("refresh did not rotate the tokens")
			}
			wantUser(t, s, fresh.AccessToken, "alice")

			_, err = conf.PasswordCredentialsToken(ctx, "alice", "wrong password")
			if re, ok := errors.AsType[*oauth2.RetrieveError](err); !ok || re.ErrorCode != "invalid_grant" {
				t.Errorf("wrong password: %v; want RetrieveError invalid_grant", err)
			}
		})
	}
}

// TestTokenErrors sends every kind of bad request the README lists to /token
// and checks the status, the error code and the headers.
func TestTokenErrors(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword, "users:read")
	good := "grant_type=password&username=alice&password=" + url.QueryEscape(alicePassword)
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	const form = "application/x-www-form-urlencoded"

	for _, tc := range []struct {
		name        string
		method      string // POST when empty
		target      string // /token when empty
		contentType string
		auth        string
		body        string
		wantStatus  int
		wantError   string // "" for success
		wantHeader  map[string]string
	}{
		{name: "valid", contentType: form, body: good, wantStatus: 200},
		{name: "charset parameter is fine", contentType: form + "; charset=UTF-8", body: good, wantStatus: 200},
		{name: "GET", method: "GET", wantStatus: 405, wantError: "invalid_request", wantHeader: map[string]string{"Allow": "POST"}},
		{name: "PUT", method: "PUT", contentType: form, body: good, wantStatus: 405, wantError: "invalid_request", wantHeader: map[string]string{"Allow": "POST"}},
		{name: "JSON body", contentType: "application/json", body: `{"grant_type":"password"}`, wantStatus: 400, wantError: "invalid_request"},
		{name: "no content type", body: good, wantStatus: 400, wantError: "invalid_request"},
		{name: "multipart", contentType: "multipart/form-data; boundary=x", body: good, wantStatus: 400, wantError: "invalid_request"},
		{name: "parameters in the query string", target: "/token?" + good, contentType: form, body: "", wantStatus: 400, wantError: "invalid_request"},
		{name: "any query string", target: "/token?x=1", contentType: form, body: good, wantStatus: 400, wantError: "invalid_request"},
		{name: "repeated parameter", contentType: form, body: good + "&username=bob", wantStatus: 400, wantError: "invalid_request"},
		{name: "repeated empty parameter", contentType: form, body: good + "&scope=&scope=", wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed form", contentType: form, body: good + "&x=%zz", wantStatus: 400, wantError: "invalid_request"},
		{name: "body too large", contentType: form, body: good + "&pad=" + strings.Repeat("a", 20000), wantStatus: 400, wantError: "invalid_request"},
		{name: "grant_type missing", contentType: form, body: "username=alice&password=x", wantStatus: 400, wantError: "invalid_request"},
		{name: "grant_type empty is absent", contentType: form, body: "grant_type=&username=alice&password=x", wantStatus: 400, wantError: "invalid_request"},
		{name: "grant_type unknown", contentType: form, body: "grant_type=client_credentials", wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "grant_type authorization_code", contentType: form, body: "grant_type=authorization_code&code=x", wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "username missing", contentType: form, body: "grant_type=password&password=x", wantStatus: 400, wantError: "invalid_request"},
		{name: "username empty", contentType: form, body: "grant_type=password&username=&password=x", wantStatus: 400, wantError: "invalid_request"},
		{name: "password missing", contentType: form, body: "grant_type=password&username=alice", wantStatus: 400, wantError: "invalid_request"},
		{name: "wrong password", contentType: form, body: "grant_type=password&username=alice&password=wrong", wantStatus: 400, wantError: "invalid_grant"},
		{name: "unknown user", contentType: form, body: "grant_type=password&username=nobody&password=wrong", wantStatus: 400, wantError: "invalid_grant"},
		{name: "scope malformed", contentType: form, body: good + "&scope=" + url.QueryEscape(`a"b`), wantStatus: 400, wantError: "invalid_scope"},
		{name: "scope with double space", contentType: form, body: good + "&scope=" + url.QueryEscape("users:read  x"), wantStatus: 400, wantError: "invalid_scope"},
		{name: "scope not granted", contentType: form, body: good + "&scope=users:write", wantStatus: 400, wantError: "invalid_scope"},
		{name: "refresh_token missing", contentType: form, body: "grant_type=refresh_token", wantStatus: 400, wantError: "invalid_request"},
		{name: "refresh_token unknown", contentType: form, body: "grant_type=refresh_token&refresh_token=nope", wantStatus: 400, wantError: "invalid_grant"},
		{name: "client secret in body, unknown client", contentType: form, body: good + "&client_id=app&client_secret=s3cret", wantStatus: 401, wantError: "invalid_client",
			wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="authql"`}},
		{name: "client secret in Basic, unknown client", contentType: form, auth: basic("app", "s3cret"), body: good, wantStatus: 401, wantError: "invalid_client",
			wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="authql"`}},
		{name: "Basic and body secret both", contentType: form, auth: basic("app", "s3cret"), body: good + "&client_secret=s3cret", wantStatus: 400, wantError: "invalid_request"},
		{name: "Basic user differs from client_id", contentType: form, auth: basic("app", ""), body: good + "&client_id=other", wantStatus: 400, wantError: "invalid_request"},
		{name: "client_secret without client_id", contentType: form, body: good + "&client_secret=s3cret", wantStatus: 401, wantError: "invalid_client"},
		{name: "Bearer on the token endpoint", contentType: form, auth: "Bearer abc", body: good, wantStatus: 401, wantError: "invalid_client"},
		{name: "malformed Basic", contentType: form, auth: "Basic !!!", body: good, wantStatus: 401, wantError: "invalid_client"},
		{name: "Basic without colon", contentType: form, auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("app")), body: good, wantStatus: 401, wantError: "invalid_client"},
		{name: "public client in Basic", contentType: form, auth: basic("my%20app", ""), body: good, wantStatus: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, target := tc.method, tc.target
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = "/token"
			}
			req := s.newRequest(method, target, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, body := s.do(req)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d; want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			for name, want := range map[string]string{
				"Content-Type":  "application/json",
				"Cache-Control": "no-store",
				"Pragma":        "no-cache",
			} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s = %q; want %q", name, got, want)
				}
			}
			for name, want := range tc.wantHeader {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s = %q; want %q", name, got, want)
				}
			}
			var got struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body is not JSON: %s", body)
			}
			if got.Error != tc.wantError {
				t.Errorf("error = %q; want %q (%s)", got.Error, tc.wantError, got.Description)
			}
			if tc.wantError == "" {
				if got.AccessToken == "" {
					t.Errorf("no access_token in %s", body)
				}
				return
			}
			if got.Description == "" || strings.ContainsAny(got.Description, "\"\\") {
				t.Errorf("error_description = %q; want printable text without quotes", got.Description)
			}
		})
	}
}

// An unknown username and a wrong password must be indistinguishable.
func TestTokenUnknownUserLooksLikeWrongPassword(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword)
	answer := func(username string) string {
		resp, body := s.postToken(url.Values{"grant_type": {"password"}, "username": {username}, "password": {"not the password"}})
		return resp.Status + " " + string(body)
	}
	if a, b := answer("alice"), answer("nobody"); a != b {
		t.Errorf("wrong password: %s\nunknown user:   %s", a, b)
	}
}

// TestTokenRefreshReplay checks RFC 9700 section 4.14.2 over HTTP: within
// the grace window a replay gets the same new token; after it, the replay
// ends the session and its access tokens are refused at once.
func TestTokenRefreshReplay(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword)
	first := s.login("alice", alicePassword)
	refresh := func(tok string) (int, authtest.Tokens) {
		resp, body := s.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}})
		var out authtest.Tokens
		json.Unmarshal(body, &out)
		return resp.StatusCode, out
	}

	status, a := refresh(first.RefreshToken)
	if status != 200 {
		t.Fatalf("refresh: %d", status)
	}
	s.clock.Advance(5 * time.Second)
	if status, b := refresh(first.RefreshToken); status != 200 || b.RefreshToken != a.RefreshToken {
		t.Fatalf("replay within grace: %d %q; want 200 %q", status, b.RefreshToken, a.RefreshToken)
	}
	s.clock.Advance(10 * time.Second)
	if status, _ := refresh(first.RefreshToken); status != 400 {
		t.Fatalf("replay after grace: %d; want 400", status)
	}
	resp, ans := s.query("Bearer " + a.AccessToken)
	wantRefused(t, resp, ans, http.StatusUnauthorized, auth.CodeInvalidToken)
	if status, _ := refresh(a.RefreshToken); status != 400 {
		t.Errorf("child of the revoked session: %d; want 400", status)
	}
}

// TestConcurrentRefreshesOverHTTP: fifty clients refresh one token at once;
// all get the same new token and the session lives on.
func TestConcurrentRefreshesOverHTTP(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword)
	tok := s.login("alice", alicePassword)
	const n = 50
	results := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, body := s.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
			var got authtest.Tokens
			json.Unmarshal(body, &got)
			results <- fmt.Sprint(resp.StatusCode, " ", got.RefreshToken)
		})
	}
	wg.Wait()
	close(results)
	first := ""
	for r := range results {
		if first == "" {
			first = r
		}
		if r != first || !strings.HasPrefix(r, "200 ") {
			t.Fatalf("refresh results differ: %q vs %q", r, first)
		}
	}
	resp, body := s.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {strings.TrimPrefix(first, "200 ")}})
	authtest.WantOAuth(t, resp, body, 200, "")
}
