package graph_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"authql/auth/authtest"
)

// What graph.WriteAuthError writes for the HTTP edge: the GraphQL-shaped
// answers to requests refused before GraphQL runs.

// TestBearerRefusalIsGraphQL checks the body of /query's answers through
// the real GraphQL handler: a refused bearer token gets graph's error
// envelope (UNAUTHENTICATED for a token that is not valid, BAD_USER_INPUT
// for a malformed header, with a message), as application/graphql-response+json
// when the request accepts it; an anonymous request gets me: null. The
// middleware's decisions, case by case, are httpapi's TestBearer.
func TestBearerRefusalIsGraphQL(t *testing.T) {
	ts := newTestServer(t)
	ts.addUser("alice", alicePassword, "users:read")
	valid := ts.login("alice", alicePassword).AccessToken

	for _, tc := range []struct {
		name       string
		header     string
		accept     string
		wantStatus int
		wantCode   string // the only error's extensions.code
		wantUser   string // dats.me.username for 200
	}{
		{name: "no header: anonymous", wantStatus: 200, wantCode: "UNAUTHENTICATED"},
		{name: "valid", header: "Bearer " + valid, wantStatus: 200, wantUser: "alice"},
		{name: "invalid token", header: "Bearer garbage", wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		{name: "graphql-response+json accepted", header: "Bearer garbage", accept: "application/graphql-response+json, application/json;q=0.9", wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		{name: "malformed", header: "Basic YWxpY2U6cGFzcw==", wantStatus: 400, wantCode: "BAD_USER_INPUT"},
		{name: "malformed, graphql-response+json accepted", header: "Bearer abc$def", accept: "application/graphql-response+json", wantStatus: 400, wantCode: "BAD_USER_INPUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", strings.NewReader(`{"query":"{ me { username } }"}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, body := ts.do(req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d; want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			var got authtest.GraphQLResponse
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body is not JSON: %s", body)
			}
			if tc.wantStatus == 200 {
				var me *struct{ Username string }
				got.Decode(t, "me", &me)
				switch {
				case tc.wantUser == "" && (me != nil || got.Code(t) != tc.wantCode):
					t.Errorf("anonymous me = %+v, errors %+v; want null and %s", me, got.Errors, tc.wantCode)
				case tc.wantUser != "" && (me == nil || me.Username != tc.wantUser):
					t.Errorf("me = %+v, errors %+v; want %s", me, got.Errors, tc.wantUser)
				}
				return
			}
			wantType := "application/json"
			if strings.Contains(tc.accept, "application/graphql-response+json") {
				wantType = "application/graphql-response+json"
			}
			if ct := resp.Header.Get("Content-Type"); ct != wantType {
				t.Errorf("Content-Type = %q; want %q", ct, wantType)
			}
			if code := got.Code(t); code != tc.wantCode || got.Errors[0].Message == "" {
				t.Errorf("errors = %+v; want code %s with a message", got.Errors, tc.wantCode)
			}
		})
	}
}

// TestQueryTrailingSlash: /query/, which a client or a proxy's
// configuration may ask for by mistake, gets a 404 in GraphQL's error
// format that names /query, as application/graphql-response+json when the
// request accepts it. (The other endpoints' trailing slashes, and the 405s
// of /query itself, are httpapi's TestTrailingSlash.)
func TestQueryTrailingSlash(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct{ method, accept, contentType string }{
		{method: "POST", contentType: "application/json"},
		{method: "GET", contentType: "application/json"},
		{method: "POST", accept: "application/graphql-response+json", contentType: "application/graphql-response+json"},
	} {
		t.Run(strings.TrimSpace(tc.method+" /query/ "+tc.accept), func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+"/query/", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			client := *ts.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, raw := authtest.Do(t, &client, req)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status = %d (Location %q); want %d", resp.StatusCode, resp.Header.Get("Location"), http.StatusNotFound)
			}
			if resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q; want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", resp.Header.Get("Cache-Control"))
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			var got authtest.GraphQLResponse
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if _, ok := body["data"]; ok || len(got.Errors) != 1 || got.Code(t) != "BAD_USER_INPUT" ||
				!strings.HasSuffix(got.Errors[0].Message, "did you mean /query?") {
				t.Errorf("body = %s; want one error, BAD_USER_INPUT, naming /query, no data", raw)
			}
		})
	}
}
