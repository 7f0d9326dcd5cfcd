package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestBearerRefusalIsGraphQL checks the body of /query's answers through
// the real GraphQL handler: a refused bearer token gets graph's error
// envelope (UNAUTHENTICATED for a token that is not valid, BAD_USER_INPUT
// for a malformed header, with a message), as application/graphql-response+json
// when the request accepts it; an anonymous request gets me: null. The
// middleware's decisions, case by case, are httpapi's TestBearer.
func TestBearerRefusalIsGraphQL(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword, "users:read")
	valid := ta.login("alice", alicePassword).AccessToken

	for _, tc := range []struct {
		name       string
		header     string
		accept     string
		wantStatus int
		wantCode   string // the only error's extensions.code
		wantUser   string // data.me.username for 200
	}{
		{name: "no header: anonymous", wantStatus: 200, wantCode: "UNAUTHENTICATED"},
		{name: "valid", header: "Bearer " + valid, wantStatus: 200, wantUser: "alice"},
		{name: "invalid token", header: "Bearer garbage", wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		{name: "graphql-response+json accepted", header: "Bearer garbage", accept: "application/graphql-response+json, application/json;q=0.9", wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		{name: "malformed", header: "Basic YWxpY2U6cGFzcw==", wantStatus: 400, wantCode: "BAD_USER_INPUT"},
		{name: "malformed, graphql-response+json accepted", header: "Bearer abc$def", accept: "application/graphql-response+json", wantStatus: 400, wantCode: "BAD_USER_INPUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ta.URL+"/query", strings.NewReader(`{"query":"{ me { username } }"}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
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
			if tc.wantStatus == 200 {
				var me *struct{ Username string }
				decode(t, got, "me", &me)
				switch {
				case tc.wantUser == "" && (me != nil || got.code(t) != tc.wantCode):
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
			if code := got.code(t); code != tc.wantCode || got.Errors[0].Message == "" {
				t.Errorf("errors = %+v; want code %s with a message", got.Errors, tc.wantCode)
			}
		})
	}
}
