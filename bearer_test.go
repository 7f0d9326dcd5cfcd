package main

import (
	"authql/auth"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signed returns a JWT with claims, header typ and method, signed with key.
func signed(tb testing.TB, method jwt.SigningMethod, typ string, claims jwt.MapClaims, key any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// claimsOf returns the claims of a token the server issued, unverified.
func claimsOf(tb testing.TB, token string) jwt.MapClaims {
	tb.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		tb.Fatal(err)
	}
	return claims
}

// with returns a copy of claims with the changes set (nil deletes).
func with(claims jwt.MapClaims, changes jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// TestBearer sends every kind of Authorization header to /query and checks
// the status, the RFC 6750 challenge, the content type and the GraphQL body.
func TestBearer(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword, "users:read")
	valid := ta.login("alice", alicePassword).AccessToken
	claims := claimsOf(t, valid)
	key := []byte(testSecret)
	now := time.Now()

	loggedOut := ta.login("alice", alicePassword).AccessToken
	if _, resp := ta.graphql(loggedOut, `mutation { logout }`, nil); len(resp.Errors) > 0 {
		t.Fatalf("logout: %+v", resp.Errors)
	}
	ta.addUser("bob", alicePassword)
	deleted := ta.login("bob", alicePassword).AccessToken
	if err := ta.app.db.DeleteUser(context.Background(), claimsOf(t, deleted)["sub"].(string)); err != nil {
		t.Fatal(err)
	}
	carol := ta.addUser("carol", alicePassword)
	disabled := ta.login("carol", alicePassword).AccessToken
	if _, err := ta.app.service.SetUserDisabled(context.Background(), auth.Operator, carol.ID, true); err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := bytes.Replace(payload, []byte(`"scope":"users:read"`), []byte(`"scope":"users:write"`), 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
	algNone := noneHeader + "." + parts[1] + "."

	for _, tc := range []struct {
		name       string
		headers    []string
		accept     string
		wantStatus int
		wantError  string // RFC 6750 error in WWW-Authenticate; "" for none
		wantUser   string // data.me.username for 200
	}{
		{name: "no header: anonymous", wantStatus: 200},
		{name: "valid", headers: []string{"Bearer " + valid}, wantStatus: 200, wantUser: "alice"},
		{name: "lower-case scheme", headers: []string{"bearer " + valid}, wantStatus: 200, wantUser: "alice"},
		{name: "upper-case scheme", headers: []string{"BEARER " + valid}, wantStatus: 200, wantUser: "alice"},
		{name: "garbage", headers: []string{"Bearer garbage"}, wantStatus: 401, wantError: "invalid_token"},
		{name: "alg none", headers: []string{"Bearer " + algNone}, wantStatus: 401, wantError: "invalid_token"},
		{name: "HS512 with the same key", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS512, "at+jwt", claims, key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "HS384 with the same key", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS384, "at+jwt", claims, key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "another key", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt", claims, []byte("another secret of at least thirty-two bytes"))}, wantStatus: 401, wantError: "invalid_token"},
		{name: "tampered payload", headers: []string{"Bearer " + tampered}, wantStatus: 401, wantError: "invalid_token"},
		{name: "expired", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt",
			with(claims, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-16 * time.Minute).Unix()}), key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "no expiry", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt", with(claims, jwt.MapClaims{"exp": nil}), key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "not yet valid", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt",
			with(claims, jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}), key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "issued in the future", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt",
			with(claims, jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "wrong issuer", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt", with(claims, jwt.MapClaims{"iss": "evil"}), key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "typ JWT", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "JWT", claims, key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "no typ", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "", claims, key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "typ application/at+jwt", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "application/at+jwt", claims, key)}, wantStatus: 200, wantUser: "alice"},
		{name: "subject of another user", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt", with(claims, jwt.MapClaims{"sub": carol.ID}), key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "no session", headers: []string{"Bearer " + signed(t, jwt.SigningMethodHS256, "at+jwt", with(claims, jwt.MapClaims{"sid": nil}), key)}, wantStatus: 401, wantError: "invalid_token"},
		{name: "revoked session", headers: []string{"Bearer " + loggedOut}, wantStatus: 401, wantError: "invalid_token"},
		{name: "deleted user", headers: []string{"Bearer " + deleted}, wantStatus: 401, wantError: "invalid_token"},
		{name: "disabled user", headers: []string{"Bearer " + disabled}, wantStatus: 401, wantError: "invalid_token"},
		{name: "graphql-response+json accepted", headers: []string{"Bearer garbage"}, accept: "application/graphql-response+json, application/json;q=0.9", wantStatus: 401, wantError: "invalid_token"},
		{name: "malformed: scheme only", headers: []string{"Bearer"}, wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed: empty token", headers: []string{"Bearer "}, wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed: two spaces", headers: []string{"Bearer  " + valid}, wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed: two tokens", headers: []string{"Bearer " + valid + " " + valid}, wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed: Basic scheme", headers: []string{"Basic YWxpY2U6cGFzcw=="}, wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed: two headers", headers: []string{"Bearer " + valid, "Bearer " + valid}, wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed: bad characters", headers: []string{"Bearer abc$def"}, wantStatus: 400, wantError: "invalid_request", accept: "application/graphql-response+json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ta.URL+"/query", strings.NewReader(`{"query":"{ me { username } }"}`))
			req.Header.Set("Content-Type", "application/json")
			for _, h := range tc.headers {
				req.Header.Add("Authorization", h)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, body := ta.do(req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d; want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			var got gqlResponse
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body is not JSON: %s", body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if tc.wantError == "" {
				if challenge != "" {
					t.Errorf("WWW-Authenticate = %q; want none", challenge)
				}
				var me *struct{ Username string }
				decode(t, got, "me", &me)
				switch {
				case tc.wantUser == "" && (me != nil || got.code(t) != "UNAUTHENTICATED"):
					t.Errorf("anonymous me = %+v, errors %+v; want null and UNAUTHENTICATED", me, got.Errors)
				case tc.wantUser != "" && (me == nil || me.Username != tc.wantUser):
					t.Errorf("me = %+v, errors %+v; want %s", me, got.Errors, tc.wantUser)
				}
				return
			}
			wantPrefix := `Bearer realm="authql", error="` + tc.wantError + `", error_description="`
			if !strings.HasPrefix(challenge, wantPrefix) || len(challenge) <= len(wantPrefix)+1 {
				t.Errorf("WWW-Authenticate = %q; want %s…", challenge, wantPrefix)
			}
			wantType := "application/json"
			if strings.Contains(tc.accept, "application/graphql-response+json") {
				wantType = "application/graphql-response+json"
			}
			if ct := resp.Header.Get("Content-Type"); ct != wantType {
				t.Errorf("Content-Type = %q; want %q", ct, wantType)
			}
			wantCode := map[string]string{"invalid_token": "UNAUTHENTICATED", "invalid_request": "BAD_USER_INPUT"}[tc.wantError]
			if code := got.code(t); code != wantCode || got.Errors[0].Message == "" {
				t.Errorf("errors = %+v; want code %s with a message", got.Errors, wantCode)
			}
		})
	}
}

// The audience claim is checked when one is configured.
func TestBearerAudience(t *testing.T) {
	ta := newTestApp(t, func(c *config) { c.auth.Audience = "https://api.example.com" })
	ta.addUser("alice", alicePassword)
	valid := ta.login("alice", alicePassword).AccessToken
	claims := claimsOf(t, valid)
	if aud, _ := claims.GetAudience(); len(aud) != 1 || aud[0] != "https://api.example.com" {
		t.Fatalf("aud = %v; want the configured audience", aud)
	}
	wantMe(t, ta, valid, "alice")
	for name, aud := range map[string]any{"other audience": "https://other.example.com", "no audience": nil} {
		tok := signed(t, jwt.SigningMethodHS256, "at+jwt", with(claims, jwt.MapClaims{"aud": aud}), []byte(testSecret))
		if resp, _ := ta.graphql(tok, `{ me { id } }`, nil); resp.StatusCode != 401 {
			t.Errorf("%s: status %d; want 401", name, resp.StatusCode)
		}
	}
}

// Access tokens stop working when they expire, by the server's clock.
func TestBearerExpiresWithClock(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword)
	tok := ta.login("alice", alicePassword).AccessToken
	wantMe(t, ta, tok, "alice")
	ta.clock.Advance(15*time.Minute + time.Second)
	resp, body := ta.graphql(tok, `{ me { id } }`, nil)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "expired") {
		t.Errorf("after expiry: %d %q %+v; want 401 saying expired", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// A client that hangs up while its token is checked is not an internal
// error: the per-request read, which takes microseconds, finishes anyway,
// and nothing is logged as failing.
func TestBearerClientGoneIsNotAnError(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword)
	tok := ta.login("alice", alicePassword).AccessToken
	ctx, hangUp := context.WithCancel(context.Background())
	hangUp()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/query", strings.NewReader(`{"query":"{ me { username } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	ta.app.handler.ServeHTTP(w, req)
	if logs := ta.logs.String(); w.Code != http.StatusOK || strings.Contains(logs, "level=ERROR") {
		t.Errorf("status %d, body %s; want 200 and no error logged:\n%s", w.Code, w.Body, logs)
	}
}
