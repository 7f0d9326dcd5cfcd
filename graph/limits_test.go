package graph_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/graph"
)

// TestThrottleAliasedLogins: login mutations aliased in one GraphQL
// request each count against the username's bucket, and those after the
// limit are RATE_LIMITED with retryAfter. (Throttling over /token is
// httpapi's TestThrottleLogins.)
func TestThrottleAliasedLogins(t *testing.T) {
	ts := newTestServer(t, func(c *config) {
		c.auth.LoginUserLimit = auth.Limit{N: 3, Per: time.Minute}
		c.auth.LoginAddrLimit = auth.Limit{N: 8, Per: time.Minute}
	})
	ts.addUser("alice", alicePassword)
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 20 {
		fmt.Fprintf(&b, ` l%d: login(username: "alice", password: "wrong %d") { accessToken }`, i, i)
	}
	b.WriteString(" }")
	_, resp := ts.graphql("", b.String(), nil)
	codes := map[string]int{}
	for _, e := range resp.Errors {
		codes[e.Extensions["code"].(string)]++
		if e.Extensions["code"] == "RATE_LIMITED" {
			if n, _ := e.Extensions["retryAfter"].(float64); n < 1 {
				t.Errorf("retryAfter = %v", e.Extensions["retryAfter"])
			}
		}
	}
	if codes["INVALID_GRANT"] != 3 || codes["RATE_LIMITED"] != 17 {
		t.Errorf("codes = %v; want 3 INVALID_GRANT and 17 RATE_LIMITED", codes)
	}
	resp2, body := ts.wrongLogin("alice")
	authtest.WantThrottled(t, resp2, body)
}

// TestConcurrentSignupsOfOneUsername: exactly one wins, the rest are told
// the name is taken, and nothing fails inside. (The harness has no bcrypt
// pool to refuse any of them: each hashes on its request's goroutine.)
func TestConcurrentSignupsOfOneUsername(t *testing.T) {
	ts := newTestServer(t, func(c *config) { c.auth.SignupAddrLimit = auth.Limit{N: 1000, Per: time.Minute} })
	const n = 200
	codes := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, resp := ts.graphql("", `mutation($p: String!) { signup(input: {username: "popular", password: $p}) { accessToken } }`,
				map[string]any{"p": alicePassword})
			if len(resp.Errors) == 0 {
				codes <- "OK"
				return
			}
			codes <- fmt.Sprint(resp.Errors[0].Extensions["code"], ":", resp.Errors[0].Extensions["field"])
		})
	}
	wg.Wait()
	close(codes)
	count := map[string]int{}
	for c := range codes {
		count[c]++
	}
	if count["OK"] != 1 || count["BAD_USER_INPUT:username"] != n-1 {
		t.Errorf("outcomes = %v; want 1 OK and %d BAD_USER_INPUT on username", count, n-1)
	}
}

// TestRequestBounds sends oversized and abusive requests; each gets a clear
// error, and the server keeps serving.
func TestRequestBounds(t *testing.T) {
	ts := newTestServer(t, func(c *config) { c.http.MaxQueryBytes = 4096 })
	ts.addUser("alice", alicePassword)
	post := func(body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return ts.do(req)
	}
	nested := func(depth int) string {
		return `{"query":"{ __schema { types { ` + strings.Repeat("fields { type { ", depth) + "name" + strings.Repeat(" } }", depth) + ` } } }"}`
	}
	aliases := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, " a%d: __typename", i)
		}
		return `{"query":"{` + b.String() + ` }"}`
	}

	for _, tc := range []struct {
		name     string
		body     string
		status   int
		wantCode string
	}{
		{"oversized body", `{"query":"{ __typename }", "pad":"` + strings.Repeat("x", 5000) + `"}`, 0, ""},
		{"introspection depth bomb", nested(20), 200, "Maximum introspection depth exceeded"},
		{"alias bomb", aliases(200), 200, "ALIAS_LIMIT_EXCEEDED"},
		{"batch", `[{"query":"{ __typename }"},{"query":"{ __typename }"}]`, 400, "BATCH_NOT_SUPPORTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(tc.body)
			if tc.status == 0 {
				if resp.StatusCode < 400 {
					t.Errorf("status = %d; want an error (%s)", resp.StatusCode, body)
				}
			} else if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.wantCode) {
				t.Errorf("%d %s; want %d with %s", resp.StatusCode, body, tc.status, tc.wantCode)
			}
			if resp, body := post(`{"query":"{ __typename }"}`); resp.StatusCode != 200 {
				t.Errorf("server after %s: %d %s", tc.name, resp.StatusCode, body)
			}
		})
	}

	t.Run("depth", func(t *testing.T) {
		shallow := newTestServer(t, func(c *config) { c.graph.MaxDepth = 3 })
		_, resp := shallow.graphql("", `{ users { edges { node { id } } } }`, nil)
		if code := resp.Code(t); code != "DEPTH_LIMIT_EXCEEDED" {
			t.Errorf("depth 4 over a limit of 3: %+v", resp.Errors)
		}
	})
	t.Run("GraphiQL's introspection query passes the defaults", func(t *testing.T) {
		_, resp := ts.graphql("", graph.GraphiQLIntrospection, nil)
		if len(resp.Errors) != 0 || resp.Data["__schema"] == nil {
			t.Errorf("introspection: %+v", resp.Errors)
		}
	})
	t.Run("complexity", func(t *testing.T) {
		small := newTestServer(t, func(c *config) { c.graph.MaxComplexity = 5 })
		req, _ := http.NewRequest(http.MethodPost, small.URL+"/query", strings.NewReader(
			`{"query":"{ users { edges { node { id username email fullName disabled } } } }"}`))
		req.Header.Set("Content-Type", "application/json")
		if _, body := small.do(req); !strings.Contains(string(body), "COMPLEXITY_LIMIT_EXCEEDED") {
			t.Errorf("complexity: %s", body)
		}
	})
	t.Run("introspection and playground off", func(t *testing.T) {
		closed := newTestServer(t, func(c *config) { c.graph.Introspection, c.http.Playground = false, false })
		_, resp := closed.graphql("", `{ __schema { types { name } } }`, nil)
		if code := resp.Code(t); code != "INTROSPECTION_DISABLED" {
			t.Errorf("introspection off: %+v", resp)
		}
		if _, resp := closed.graphql("", `{ __typename }`, nil); len(resp.Errors) != 0 {
			t.Errorf("__typename with introspection off: %+v", resp.Errors)
		}
		req, _ := http.NewRequest(http.MethodGet, closed.URL+"/", nil)
		if r, _ := closed.do(req); r.StatusCode != 404 {
			t.Errorf("playground off: GET / = %d; want 404", r.StatusCode)
		}
		if _, resp := ts.graphql("", `{ __schema { queryType { name } } }`, nil); len(resp.Errors) != 0 {
			t.Errorf("introspection on: %+v", resp.Errors)
		}
	})
}
