package graph_test

import (
	"fmt"
	"testing"
)

// TestAdminListsUsersByPage walks users(first, after) over more users than
// one page.
func TestAdminListsUsersByPage(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("admin", alicePassword, "users:read")
	for i := range 24 {
		ts.addUser(fmt.Sprintf("user%02d", i), alicePassword)
	}
	token := ts.login("admin", alicePassword).AccessToken
	const query = `query($first: Int, $after: String) {
		users(first: $first, after: $after) { edges { cursor node { username } } pageInfo { hasNextPage endCursor } }
	}`
	type page struct {
		Edges []struct {
			Cursor string
			Node   struct{ Username string }
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}

	var names []string
	var after any
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more than 3 pages of 10 for 25 users")
		}
		_, resp := ts.graphql(token, query, map[string]any{"first": 10, "after": after})
		var p page
		resp.Decode(t, "users", &p)
		for _, e := range p.Edges {
			names = append(names, e.Node.Username)
		}
		if len(p.Edges) > 0 && (p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != p.Edges[len(p.Edges)-1].Cursor) {
			t.Errorf("endCursor = %v; want the last edge's cursor", p.PageInfo.EndCursor)
		}
		if !p.PageInfo.HasNextPage {
			if len(p.Edges) != 5 {
				t.Errorf("last page has %d users; want 5", len(p.Edges))
			}
			break
		}
		after = *p.PageInfo.EndCursor
	}
	if len(names) != 25 || names[0] != "admin" || names[24] != "user23" {
		t.Errorf("users = %v", names)
	}

	_, resp := ts.graphql(token, `{ users { edges { node { id } } } }`, nil)
	var p page
	resp.Decode(t, "users", &p)
	if len(p.Edges) != 20 {
		t.Errorf("default page = %d users; want 20", len(p.Edges))
	}
	for _, tc := range []struct {
		name string
		vars map[string]any
	}{
		{"first 0", map[string]any{"first": 0}},
		{"first over 100", map[string]any{"first": 101}},
		{"foreign cursor", map[string]any{"after": "not-a-cursor"}},
	} {
		_, resp := ts.graphql(token, query, tc.vars)
		if code := resp.Code(t); code != "BAD_USER_INPUT" {
			t.Errorf("%s: %s; want BAD_USER_INPUT", tc.name, code)
		}
	}
}

// Scope changes apply to live tokens at once, and another user's sessions
// need users:read.
func TestAdminScopesApplyAtOnce(t *testing.T) {
	ts := newTestServer(t)
	writer := ts.login(ts.addUser("writer", alicePassword, "users:write", "users:read", "orders:read").Username, alicePassword).AccessToken
	// Without users:read, to see that the sessions of another need it.
	writerOnly := ts.login(ts.addUser("writer-only", alicePassword, "users:write", "orders:read").Username, alicePassword).AccessToken
	alice := ts.addUser("alice", alicePassword, "users:read")
	aliceToken := ts.login("alice", alicePassword).AccessToken
	const users = `{ users(first: 1) { edges { node { id } } } }`
	if _, resp := ts.graphql(aliceToken, users, nil); len(resp.Errors) != 0 {
		t.Fatalf("alice with users:read: %+v", resp.Errors)
	}

	const setScopes = `mutation($id: ID!, $scopes: [String!]!) { setUserScopes(id: $id, scopes: $scopes) { username scopes } }`
	_, resp := ts.graphql(writer, setScopes, map[string]any{"id": alice.ID, "scopes": []string{"orders:read", "orders:read"}})
	var u struct {
		Username string
		Scopes   []string
	}
	resp.Decode(t, "setUserScopes", &u)
	if fmt.Sprint(u.Scopes) != "[orders:read]" {
		t.Errorf("scopes = %v; want [orders:read]", u.Scopes)
	}
	if _, resp := ts.graphql(aliceToken, users, nil); resp.Code(t) != "FORBIDDEN" {
		t.Errorf("alice's token after losing users:read: %+v", resp.Errors)
	}

	_, resp = ts.graphql(writer, setScopes, map[string]any{"id": alice.ID, "scopes": []string{`bad"scope`}})
	if code := resp.Code(t); code != "BAD_USER_INPUT" {
		t.Errorf("malformed scope: %s", code)
	}
	_, resp = ts.graphql(writer, setScopes, map[string]any{"id": "no-such-user", "scopes": []string{}})
	if code := resp.Code(t); code != "BAD_USER_INPUT" {
		t.Errorf("unknown user: %s", code)
	}

	_, resp = ts.graphql(writerOnly, `mutation($id: ID!) { setUserScopes(id: $id, scopes: []) { sessions { id } } }`, map[string]any{"id": alice.ID})
	if code := resp.Code(t); code != "FORBIDDEN" {
		t.Errorf("another user's sessions without users:read: %+v", resp.Errors)
	}
}
