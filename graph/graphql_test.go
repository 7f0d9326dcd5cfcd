package graph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

const authPayloadFields = `accessToken tokenType expiresIn refreshToken scope user { id username email fullName disabled scopes createdAt }`

type authPayload struct {
	AccessToken  string
	TokenType    string
	ExpiresIn    int
	RefreshToken string
	Scope        string
	User         struct {
		ID, Username    string
		Email, FullName *string
		Disabled        bool
		Scopes          []string
		CreatedAt       string
	}
}

// TestGraphQLAccountFlow is what a playground or Apollo user does: signup,
// me, login, refreshToken, logout, then me again with the dead token.
func TestGraphQLAccountFlow(t *testing.T) {
	ts := newTestServer(t)

	_, resp := ts.graphql("", `mutation($in: SignupInput!) { signup(input: $in) { `+authPayloadFields+` } }`,
		map[string]any{"in": map[string]any{"username": "Dana", "password": alicePassword, "email": "dana@example.com"}})
	var signup authPayload
	resp.Decode(t, "signup", &signup)
	if signup.TokenType != "Bearer" || signup.ExpiresIn != 900 || signup.Scope != "" || signup.User.Username != "Dana" ||
		signup.User.Email == nil || *signup.User.Email != "dana@example.com" || signup.User.FullName != nil ||
		len(signup.User.Scopes) != 0 || signup.User.CreatedAt == "" {
		t.Errorf("signup = %+v", signup)
	}
	wantMe(t, ts, signup.AccessToken, "Dana")

	_, resp = ts.graphql("", `mutation { login(username: "dana", password: "wrong password") { accessToken } }`, nil)
	if code := resp.Code(t); code != "INVALID_GRANT" {
		t.Errorf("wrong password: code %s; want INVALID_GRANT", code)
	}
	if string(resp.Data["login"]) != "" && string(resp.Data["login"]) != "null" {
		t.Errorf("wrong password: data.login = %s", resp.Data["login"])
	}

	_, resp = ts.graphql("", `mutation($p: String!) { login(username: "dana", password: $p) { `+authPayloadFields+` } }`,
		map[string]any{"p": alicePassword})
	var login authPayload
	resp.Decode(t, "login", &login)
	if login.User.ID != signup.User.ID || login.AccessToken == signup.AccessToken {
		t.Errorf("login = %+v", login)
	}

	_, resp = ts.graphql("", `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }`,
		map[string]any{"r": login.RefreshToken})
	var refreshed authPayload
	resp.Decode(t, "refreshToken", &refreshed)
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == login.RefreshToken {
		t.Errorf("refreshToken did not rotate: %+v", refreshed)
	}
	wantMe(t, ts, refreshed.AccessToken, "Dana")

	_, resp = ts.graphql(refreshed.AccessToken, `mutation { logout }`, nil)
	var ok bool
	resp.Decode(t, "logout", &ok)
	if !ok {
		t.Error("logout = false")
	}
	httpResp, resp := ts.graphql(refreshed.AccessToken, `{ me { id } }`, nil)
	if httpResp.StatusCode != 401 || resp.Code(t) != "UNAUTHENTICATED" {
		t.Errorf("me after logout: %d %+v; want 401 UNAUTHENTICATED", httpResp.StatusCode, resp.Errors)
	}
	wantMe(t, ts, signup.AccessToken, "Dana") // the signup session is still live

	_, resp = ts.graphql(signup.AccessToken, `mutation { logout(allSessions: true) }`, nil)
	resp.Decode(t, "logout", &ok)
	if httpResp, _ := ts.graphql(signup.AccessToken, `{ me { id } }`, nil); httpResp.StatusCode != 401 {
		t.Errorf("me after logout(allSessions): %d; want 401", httpResp.StatusCode)
	}
	_, resp = ts.graphql("", `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken } }`,
		map[string]any{"r": signup.RefreshToken})
	if code := resp.Code(t); code != "INVALID_GRANT" {
		t.Errorf("refresh after logout: %s; want INVALID_GRANT", code)
	}
}

// login and /token are one code path: a GraphQL token works on /token's
// refresh grant and the other way round.
func TestGraphQLLoginAndTokenEndpointShareSessions(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword, "users:read")
	_, resp := ts.graphql("", `mutation($p: String!) { login(username: "alice", password: $p, scope: "users:read") { refreshToken scope } }`,
		map[string]any{"p": alicePassword})
	var login authPayload
	resp.Decode(t, "login", &login)
	if login.Scope != "users:read" {
		t.Errorf("scope = %q", login.Scope)
	}
	httpResp, body := ts.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.RefreshToken}})
	if httpResp.StatusCode != 200 {
		t.Errorf("/token refresh of a GraphQL login: %d %s", httpResp.StatusCode, body)
	}
}

func TestGraphQLErrors(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword)
	token := ts.login("alice", alicePassword).AccessToken
	ts.addUser("taken", alicePassword)

	for _, tc := range []struct {
		name      string
		token     string
		query     string
		vars      map[string]any
		wantCode  string
		wantField string
		wantMsg   string
	}{
		{name: "anonymous me", query: `{ me { id } }`, wantCode: "UNAUTHENTICATED"},
		{name: "anonymous logout", query: `mutation { logout }`, wantCode: "UNAUTHENTICATED"},
		{name: "users without users:read", token: token, query: `{ users { edges { node { id } } } }`, wantCode: "FORBIDDEN"},
		{name: "setUserScopes without users:write", token: token, query: `mutation { setUserScopes(id: "x", scopes: []) { id } }`, wantCode: "FORBIDDEN"},
		{name: "wrong password", query: `mutation { login(username: "alice", password: "wrong password") { accessToken } }`, wantCode: "INVALID_GRANT"},
		{name: "unknown user", query: `mutation { login(username: "nobody", password: "wrong password") { accessToken } }`, wantCode: "INVALID_GRANT"},
		{name: "scope not granted", query: `mutation($p: String!) { login(username: "alice", password: $p, scope: "users:write") { accessToken } }`,
			vars: map[string]any{"p": alicePassword}, wantCode: "INVALID_SCOPE"},
		{name: "malformed scope", query: `mutation($p: String!) { login(username: "alice", password: $p, scope: " x") { accessToken } }`,
			vars: map[string]any{"p": alicePassword}, wantCode: "INVALID_SCOPE"},
		{name: "bad refresh token", query: `mutation { refreshToken(refreshToken: "nope") { accessToken } }`, wantCode: "INVALID_GRANT"},
		{name: "signup short password", query: `mutation { signup(input: {username: "erin", password: "short"}) { accessToken } }`,
			wantCode: "BAD_USER_INPUT", wantField: "password", wantMsg: "at least 8"},
		{name: "signup password over 72 bytes", query: `mutation($p: String!) { signup(input: {username: "erin", password: $p}) { accessToken } }`,
			vars: map[string]any{"p": strings.Repeat("x", 73)}, wantCode: "BAD_USER_INPUT", wantField: "password", wantMsg: "72 bytes"},
		{name: "signup username taken", query: `mutation($p: String!) { signup(input: {username: "TAKEN", password: $p}) { accessToken } }`,
			vars: map[string]any{"p": alicePassword}, wantCode: "BAD_USER_INPUT", wantField: "username"},
		{name: "signup username with space", query: `mutation($p: String!) { signup(input: {username: "er in", password: $p}) { accessToken } }`,
			vars: map[string]any{"p": alicePassword}, wantCode: "BAD_USER_INPUT", wantField: "username"},
		{name: "signup bad email", query: `mutation($p: String!) { signup(input: {username: "erin", password: $p, email: "not an email"}) { accessToken } }`,
			vars: map[string]any{"p": alicePassword}, wantCode: "BAD_USER_INPUT", wantField: "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			httpResp, resp := ts.graphql(tc.token, tc.query, tc.vars)
			if httpResp.StatusCode != http.StatusOK {
				t.Errorf("status = %d; want 200", httpResp.StatusCode)
			}
			if code := resp.Code(t); code != tc.wantCode {
				t.Errorf("code = %s; want %s (%+v)", code, tc.wantCode, resp.Errors)
			}
			e := resp.Errors[0]
			if field, _ := e.Extensions["field"].(string); field != tc.wantField {
				t.Errorf("extensions.field = %q; want %q", field, tc.wantField)
			}
			if !strings.Contains(e.Message, tc.wantMsg) || len(e.Path) == 0 {
				t.Errorf("error = %+v; want a path and a message containing %q", e, tc.wantMsg)
			}
		})
	}
}

func TestGraphQLForbiddenListsRequiredScopes(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword, "users:read")
	token := ts.login("alice", alicePassword).AccessToken
	_, resp := ts.graphql(token, `mutation { setUserDisabled(id: "x", disabled: true) { id } }`, nil)
	if resp.Code(t) != "FORBIDDEN" {
		t.Fatalf("errors = %+v", resp.Errors)
	}
	scopes, _ := resp.Errors[0].Extensions["requiredScopes"].([]any)
	if len(scopes) != 1 || scopes[0] != "users:write" {
		t.Errorf("requiredScopes = %v; want [users:write]", resp.Errors[0].Extensions["requiredScopes"])
	}
}

func TestGraphQLSignupClosed(t *testing.T) {
	ts := newTestServer(t, func(c *config) { c.auth.SignupClosed = true })
	_, resp := ts.graphql("", `mutation($p: String!) { signup(input: {username: "erin", password: $p}) { accessToken } }`,
		map[string]any{"p": alicePassword})
	if code := resp.Code(t); code != "FORBIDDEN" {
		t.Errorf("code = %s; want FORBIDDEN", code)
	}
}

// An internal failure shows a generic message and a request id, never its
// cause, and the cause is logged under that id.
func TestGraphQLInternalErrorIsHidden(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword)
	ts.db.Close() // every query now fails inside database/sql
	_, resp := ts.graphql("", `mutation($p: String!) { login(username: "alice", password: $p) { accessToken } }`,
		map[string]any{"p": alicePassword})
	if code := resp.Code(t); code != "INTERNAL_SERVER_ERROR" {
		t.Fatalf("code = %s; want INTERNAL_SERVER_ERROR", code)
	}
	e := resp.Errors[0]
	reqID, _ := e.Extensions["requestId"].(string)
	if e.Message != "internal server error" || reqID == "" {
		t.Errorf("error = %+v; want a generic message and a requestId", e)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, "request_id="+reqID) || !strings.Contains(logs, "closed") {
		t.Errorf("log does not name the cause under request id %s:\n%s", reqID, logs)
	}
}

// GraphQL over HTTP: GET serves queries and never mutations.
func TestGraphQLOverGET(t *testing.T) {
	ts := newTestServer(t)
	get := func(query string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/query?query="+url.QueryEscape(query), nil)
		return ts.do(req)
	}
	if resp, body := get(`{ __typename }`); resp.StatusCode != 200 || !strings.Contains(string(body), `"Query"`) {
		t.Errorf("GET query: %d %s", resp.StatusCode, body)
	}
	if resp, body := get(`mutation { logout }`); resp.StatusCode == 200 && !strings.Contains(string(body), "errors") {
		t.Errorf("GET mutation ran: %d %s", resp.StatusCode, body)
	}
}

// GraphQL over HTTP, section 6.4: a request that fails before execution is
// 200 for application/json, and 4xx without a data entry for
// application/graphql-response+json; a body that is not JSON is 400.
func TestGraphQLOverHTTPStatuses(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name, accept, body string
		status             int
		wantType           string
	}{
		{"parse error, json", "application/json", `{"query":"{"}`, 200, "application/json"},
		{"validation error, json", "application/json", `{"query":"{ nope }"}`, 200, "application/json"},
		{"parse error, graphql-response", "application/graphql-response+json", `{"query":"{"}`, 400, "application/graphql-response+json"},
		{"validation error, graphql-response", "application/graphql-response+json", `{"query":"{ nope }"}`, 400, "application/graphql-response+json"},
		{"body not JSON", "application/json", `{"query":`, 400, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", tc.accept)
			resp, body := ts.do(req)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("%d %q; want %d %q (%s)", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.wantType, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil || got["errors"] == nil {
				t.Fatalf("body %s", body)
			}
			if _, hasData := got["data"]; hasData && tc.accept == "application/graphql-response+json" {
				t.Errorf("data entry in %s", body)
			}
		})
	}
}

// TestGraphQLAnswersAreNotStored: every /query answer says Cache-Control:
// no-store, so that no browser or shared cache keeps a user's answer (a GET
// of { me { id } } is one URL for everybody): with a token and without, by
// GET and POST, and the bearer middleware's and the transport's refusals.
func TestGraphQLAnswersAreNotStored(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword)
	token := ts.login("alice", alicePassword).AccessToken
	meQuery := url.Values{"query": {`{ me { id } }`}}.Encode()
	for _, tc := range []struct {
		name, method, auth, body string
		status                   int
	}{
		{"GET with a token", http.MethodGet, "Bearer " + token, "", 200},
		{"GET anonymous", http.MethodGet, "", "", 200},
		{"POST with a token", http.MethodPost, "Bearer " + token, `{"query":"{ me { id } }"}`, 200},
		{"POST anonymous", http.MethodPost, "", `{"query":"{ me { id } }"}`, 200},
		{"refused token", http.MethodGet, "Bearer not.a.token", "", 401},
		{"malformed Authorization", http.MethodPost, "Basic YTpi", `{"query":"{ me { id } }"}`, 400},
		{"batch", http.MethodPost, "Bearer " + token, `[{"query":"{ me { id } }"}]`, 400},
		{"body not JSON", http.MethodPost, "Bearer " + token, `{"query":`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+"/query?"+meQuery, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.method == http.MethodPost {
				req.URL.RawQuery = ""
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, body := ts.do(req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", got)
			}
		})
	}
}

// TestFloodOfDistinctQueriesKeepsHeapBounded sends what any anonymous client
// can: 150 distinct valid queries of about 100 KB each (a long comment, then
// { __typename }). The parsed-query cache must not keep them: before it was
// bounded in bytes it held each one whole, 15 MB for this flood and up to
// 1000 × MAX_QUERY_BYTES for a longer one.
func TestFloodOfDistinctQueriesKeepsHeapBounded(t *testing.T) {
	ts := newTestServer(t)
	padding := strings.Repeat("x", 100_000)
	send := func(i int) {
		body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf("# %d %s\n{ __typename }", i, padding)})
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp, body := ts.do(req); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"Query"`) {
			t.Fatalf("query %d: %d %.200s", i, resp.StatusCode, body)
		}
	}
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC() // and what sync.Pools held over the first
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	send(-1) // warm up pools and buffers
	before := heap()
	for i := range 150 {
		send(i)
	}
	grew := heap() - before
	t.Logf("the heap grew by %.1f MiB", float64(grew)/(1<<20))
	// The cache's budget (4 MiB, none of it for queries this long) as room
	// for buffers and pools; well below the 15 MB of the flood.
	if grew > 4<<20 {
		t.Errorf("the heap grew by %.1f MiB during the flood; want at most 4", float64(grew)/(1<<20))
	}
}
