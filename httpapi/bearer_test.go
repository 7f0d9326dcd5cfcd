package httpapi_test

import (
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

	"authql/auth"
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
// the status, the RFC 6750 challenge, and whom the middleware let through
// or what it refused with. (The GraphQL body of a refusal is graph's:
// graph's TestBearerRefusalIsGraphQL checks it.)
func TestBearer(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	s.addUser("alice", alicePassword, "users:read")
	valid := s.login("alice", alicePassword).AccessToken
	claims := claimsOf(t, valid)
	now := s.clock.Now()

	loggedOut := s.login("alice", alicePassword).AccessToken
	id, err := s.svc.Authenticate(ctx, loggedOut, auth.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.svc.Logout(ctx, id, false); err != nil {
		t.Fatalf("logout: %v", err)
	}
	s.addUser("bob", alicePassword)
	deleted := s.login("bob", alicePassword).AccessToken
	if err := s.svc.DeleteUser(ctx, auth.Operator, claimsOf(t, deleted)["sub"].(string)); err != nil {
		t.Fatal(err)
	}
	carol := s.addUser("carol", alicePassword)
	disabled := s.login("carol", alicePassword).AccessToken
	if _, err := s.svc.SetUserDisabled(ctx, auth.Operator, carol.ID, true); err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := bytes.Replace(payload, []byte(`"scope":"users:read"`), []byte(`"scope":"users:write"`), 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
	algNone := noneHeader + "." + parts[1] + "."
	key := s.secret

	for _, tc := range []struct {
		name       string
		headers    []string
		accept     string
		wantStatus int
		wantError  string // RFC 6750 error in WWW-Authenticate; "" for none
		wantUser   string // the identity's username for 200; "" for anonymous
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
			req := s.newRequest(http.MethodPost, "/query", strings.NewReader(`{"query":"{ me { username } }"}`))
			req.Header.Set("Content-Type", "application/json")
			for _, h := range tc.headers {
				req.Header.Add("Authorization", h)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, body := s.do(req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d; want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			var got answer
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body is not JSON: %s", body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if tc.wantError == "" {
				if challenge != "" {
					t.Errorf("WWW-Authenticate = %q; want none", challenge)
				}
				switch {
				case got.Refused != nil:
					t.Errorf("refused with %+v; want %q let through", *got.Refused, tc.wantUser)
				case tc.wantUser == "" && got.Identity != nil:
					t.Errorf("identity %+v; want an anonymous request", *got.Identity)
				case tc.wantUser != "" && (got.Identity == nil || got.Identity.Username != tc.wantUser):
					t.Errorf("identity %+v; want %s", got.Identity, tc.wantUser)
				}
				return
			}
			wantPrefix := `Bearer realm="authql", error="` + tc.wantError + `", error_description="`
			if !strings.HasPrefix(challenge, wantPrefix) || len(challenge) <= len(wantPrefix)+1 {
				t.Errorf("WWW-Authenticate = %q; want %s…", challenge, wantPrefix)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q; want refuse's application/json", ct)
			}
			wantRefused(t, resp, got, tc.wantStatus, auth.Code(tc.wantError))
		})
	}
}

// The identity the middleware puts in the context is the token's: its
// user, session, client and the scopes the user still holds.
func TestBearerIdentity(t *testing.T) {
	s := newServer(t)
	alice := s.addUser("alice", alicePassword, "users:read", "users:write")
	tok := s.login("alice", alicePassword).AccessToken
	claims := claimsOf(t, tok)
	if _, err := s.svc.SetUserScopes(context.Background(), auth.Operator, alice.ID, []string{"users:read"}); err != nil {
		t.Fatal(err)
	}
	resp, a := s.query("Bearer " + tok)
	if resp.StatusCode != 200 || a.Identity == nil {
		t.Fatalf("%d %+v; want alice's identity", resp.StatusCode, a.Refused)
	}
	want := identity{UserID: alice.ID, Username: "alice", Scopes: []string{"users:read"}, SessionID: claims["sid"].(string)}
	if got := *a.Identity; got.UserID != want.UserID || got.Username != want.Username || got.SessionID != want.SessionID ||
		got.ClientID != "" || strings.Join(got.Scopes, " ") != "users:read" {
		t.Errorf("identity = %+v; want %+v", got, want)
	}
}

// The audience claim is checked when one is configured.
func TestBearerAudience(t *testing.T) {
	s := newServer(t, func(c config) { c.auth.Audience = "https://api.example.com" })
	s.addUser("alice", alicePassword)
	valid := s.login("alice", alicePassword).AccessToken
	claims := claimsOf(t, valid)
	if aud, _ := claims.GetAudience(); len(aud) != 1 || aud[0] != "https://api.example.com" {
		t.Fatalf("aud = %v; want the configured audience", aud)
	}
	wantUser(t, s, valid, "alice")
	for name, aud := range map[string]any{"other audience": "https://other.example.com", "no audience": nil} {
		tok := signed(t, jwt.SigningMethodHS256, "at+jwt", with(claims, jwt.MapClaims{"aud": aud}), s.secret)
		if status := s.queryStatus(tok); status != 401 {
			t.Errorf("%s: status %d; want 401", name, status)
		}
	}
}

// Access tokens stop working when they expire, by the server's clock.
func TestBearerExpiresWithClock(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword)
	tok := s.login("alice", alicePassword).AccessToken
	wantUser(t, s, tok, "alice")
	s.clock.Advance(15*time.Minute + time.Second)
	resp, a := s.query("Bearer " + tok)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "expired") {
		t.Errorf("after expiry: %d %q %+v; want 401 saying expired", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), a.Refused)
	}
}

// A client that hangs up while its token is checked is not an internal
// error: the per-request read, which takes microseconds, finishes anyway,
// and nothing is logged as failing.
func TestBearerClientGoneIsNotAnError(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword)
	tok := s.login("alice", alicePassword).AccessToken
	ctx, hangUp := context.WithCancel(context.Background())
	hangUp()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/query", strings.NewReader(`{"query":"{ me { username } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, req)
	var a answer
	json.Unmarshal(w.Body.Bytes(), &a)
	if logs := s.logs.String(); w.Code != http.StatusOK || a.Identity == nil || a.Identity.Username != "alice" || strings.Contains(logs, "level=ERROR") {
		t.Errorf("status %d, body %s; want 200 for alice and no error logged:\n%s", w.Code, w.Body, logs)
	}
}
