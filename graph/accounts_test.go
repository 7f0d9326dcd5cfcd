package graph_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"authql/auth/authtest"
)

// TestDisabledUser checks every door a disabled user might try: the
// password grant and login answer exactly like a wrong password, refresh is
// refused, and live access tokens get 401 at once.
func TestDisabledUser(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.login(ts.addUser("admin", alicePassword, "users:write").Username, alicePassword)
	alice := ts.addUser("alice", alicePassword)
	live := ts.login("alice", alicePassword)

	wrongPassword := func() string {
		_, body := ts.postToken(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"not the password"}})
		return string(body)
	}
	before := wrongPassword()

	_, resp := ts.graphql(admin.AccessToken, `mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { disabled } }`,
		map[string]any{"id": alice.ID})
	var u struct{ Disabled bool }
	resp.Decode(t, "setUserDisabled", &u)
	if !u.Disabled {
		t.Fatalf("setUserDisabled: %+v", resp)
	}

	t.Run("/token", func(t *testing.T) {
		resp, body := ts.postToken(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
		authtest.WantOAuth(t, resp, body, 400, "invalid_grant")
		if string(body) != before || wrongPassword() != before {
			t.Errorf("disabled: %s\nwrong password: %s", body, before)
		}
	})
	t.Run("login", func(t *testing.T) {
		_, resp := ts.graphql("", `mutation($p: String!) { login(username: "alice", password: $p) { accessToken } }`, map[string]any{"p": alicePassword})
		_, wrong := ts.graphql("", `mutation { login(username: "alice", password: "not the password") { accessToken } }`, nil)
		if resp.Code(t) != "INVALID_GRANT" || resp.Errors[0].Message != wrong.Errors[0].Message {
			t.Errorf("login: %+v; wrong password: %+v", resp.Errors, wrong.Errors)
		}
	})
	t.Run("refresh", func(t *testing.T) {
		resp, body := ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {live.RefreshToken}})
		authtest.WantOAuth(t, resp, body, 400, "invalid_grant")
		_, gql := ts.graphql("", `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`, map[string]any{"r": live.RefreshToken})
		if code := gql.Code(t); code != "INVALID_GRANT" {
			t.Errorf("refreshToken: %s", code)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		if s := authtest.MeStatus(t, ts.URL, live.AccessToken); s != 401 {
			t.Errorf("me: %d; want 401", s)
		}
	})
	t.Run("enabled again", func(t *testing.T) {
		ts.graphql(admin.AccessToken, `mutation($id: ID!) { setUserDisabled(id: $id, disabled: false) { id } }`, map[string]any{"id": alice.ID})
		ts.login("alice", alicePassword)
		if s := authtest.MeStatus(t, ts.URL, live.AccessToken); s != 401 {
			t.Errorf("a token from before the disabling works again: %d", s)
		}
	})
}

func TestChangePassword(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword)
	current, other := ts.login("alice", alicePassword), ts.login("alice", alicePassword)
	const change = `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }`

	for _, tc := range []struct {
		name, currentPassword, newPassword, code, field, msg string
	}{
		{"wrong current password", "not the password", "a fine new password", "INVALID_GRANT", "currentPassword", ""},
		{"too short", alicePassword, "short", "BAD_USER_INPUT", "newPassword", "at least 8 characters"},
		{"too long", alicePassword, strings.Repeat("x", 73), "BAD_USER_INPUT", "newPassword", "72 bytes"},
		{"common", alicePassword, "Password123", "BAD_USER_INPUT", "newPassword", "common"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp := ts.graphql(current.AccessToken, change, map[string]any{"c": tc.currentPassword, "n": tc.newPassword})
			if code := resp.Code(t); code != tc.code || resp.Errors[0].Extensions["field"] != tc.field ||
				!strings.Contains(resp.Errors[0].Message, tc.msg) {
				t.Errorf("errors = %+v; want %s on %s with %q", resp.Errors, tc.code, tc.field, tc.msg)
			}
		})
	}
	if s := authtest.MeStatus(t, ts.URL, other.AccessToken); s != 200 {
		t.Fatalf("a failed change ended other sessions: %d", s)
	}

	_, resp := ts.graphql(current.AccessToken, change, map[string]any{"c": alicePassword, "n": "a fine new password"})
	var ok bool
	resp.Decode(t, "changePassword", &ok)
	if !ok {
		t.Fatalf("changePassword: %+v", resp.Errors)
	}
	if s := authtest.MeStatus(t, ts.URL, current.AccessToken); s != 200 {
		t.Errorf("current session after the change: %d; want 200", s)
	}
	if s := authtest.MeStatus(t, ts.URL, other.AccessToken); s != 401 {
		t.Errorf("other session after the change: %d; want 401", s)
	}
	resp2, body := ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {other.RefreshToken}})
	authtest.WantOAuth(t, resp2, body, 400, "invalid_grant")
	ts.login("alice", "a fine new password")
	resp2, body = ts.postToken(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
	authtest.WantOAuth(t, resp2, body, 400, "invalid_grant")
}

type session struct {
	ID         string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	ClientID   *string
	UserAgent  *string
	Current    bool
}

const sessionsQuery = `{ me { sessions { id createdAt lastUsedAt expiresAt clientId userAgent current } } }`

func mySessions(t *testing.T, ts *testServer, accessToken string) []session {
	t.Helper()
	_, resp := ts.graphql(accessToken, sessionsQuery, nil)
	var me struct{ Sessions []session }
	resp.Decode(t, "me", &me)
	return me.Sessions
}

// TestSessions lists and revokes sessions across two logins, and checks that
// a refresh moves lastUsedAt and that sessions expire unused.
func TestSessions(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.addUser("alice", alicePassword)
	ts.addUser("bob", alicePassword)
	first := ts.login("alice", alicePassword)
	ts.clock.Advance(time.Minute)
	second := ts.login("alice", alicePassword)
	bob := ts.login("bob", alicePassword)

	sessions := mySessions(t, ts, first.AccessToken)
	if len(sessions) != 2 || !sessions[1].Current || sessions[0].Current {
		t.Fatalf("sessions = %+v; want two, the older one current", sessions)
	}
	firstID, secondID := sessions[1].ID, sessions[0].ID
	if ua := sessions[0].UserAgent; ua == nil || !strings.HasPrefix(*ua, "Go-http-client") {
		t.Errorf("userAgent = %v", ua)
	}
	if sessions[0].ClientID != nil {
		t.Errorf("clientId = %v; want null", *sessions[0].ClientID)
	}
	if want := sessions[0].CreatedAt.Add(720 * time.Hour); !sessions[0].ExpiresAt.Equal(want) {
		t.Errorf("expiresAt = %v; want %v", sessions[0].ExpiresAt, want)
	}

	ts.clock.Advance(10 * time.Minute)
	resp, body := ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}})
	authtest.WantOAuth(t, resp, body, 200, "")
	var refreshed authtest.Tokens
	json.Unmarshal(body, &refreshed)
	for _, s := range mySessions(t, ts, first.AccessToken) {
		if s.ID == secondID && !s.LastUsedAt.Equal(ts.clock.Now().Truncate(time.Nanosecond)) {
			t.Errorf("lastUsedAt after refresh = %v; want %v", s.LastUsedAt, ts.clock.Now())
		}
	}

	const revoke = `mutation($id: ID!) { revokeSession(id: $id) }`
	bobSessions := mySessions(t, ts, bob.AccessToken)
	_, notMine := ts.graphql(first.AccessToken, revoke, map[string]any{"id": bobSessions[0].ID})
	_, unknown := ts.graphql(first.AccessToken, revoke, map[string]any{"id": "no-such-session"})
	if notMine.Code(t) != "BAD_USER_INPUT" || unknown.Code(t) != "BAD_USER_INPUT" || notMine.Errors[0].Message != unknown.Errors[0].Message {
		t.Errorf("another user's session: %+v\nunknown session: %+v; want the same error", notMine.Errors, unknown.Errors)
	}
	if s := authtest.MeStatus(t, ts.URL, bob.AccessToken); s != 200 {
		t.Errorf("bob's session after alice tried to revoke it: %d", s)
	}

	_, gql := ts.graphql(first.AccessToken, revoke, map[string]any{"id": secondID})
	var ok bool
	gql.Decode(t, "revokeSession", &ok)
	if s := authtest.MeStatus(t, ts.URL, refreshed.AccessToken); !ok || s != 401 {
		t.Errorf("revoked session's token: %v %d; want 401", ok, s)
	}
	if got := mySessions(t, ts, first.AccessToken); len(got) != 1 || got[0].ID != firstID {
		t.Errorf("sessions after revoking one = %+v", got)
	}

	// Unused for longer than REFRESH_TOKEN_TTL, a session ends.
	ts.clock.Advance(720 * time.Hour)
	resp, body = ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
	authtest.WantOAuth(t, resp, body, 400, "invalid_grant")
	if sessions, err := ts.db.Sessions(context.Background(), alice.ID, ts.clock.Now()); err != nil || len(sessions) != 0 {
		t.Errorf("expired sessions listed: %v %v", sessions, err)
	}
}
