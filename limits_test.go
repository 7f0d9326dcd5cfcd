package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"authql/auth"
	"authql/db"
)

// wrongLogin tries a wrong password for username over /token.
func (ta *testApp) wrongLogin(username string, header http.Header) (*http.Response, []byte) {
	ta.t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {"not the password"}}
	req, _ := http.NewRequest(http.MethodPost, ta.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return ta.do(req)
}

func wantThrottled(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	wantOAuth(t, resp, body, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q; want whole seconds", resp.Header.Get("Retry-After"))
	}
}

// TestThrottleAliasedLogins: login mutations aliased in one GraphQL
// request each count against the username's bucket, and those after the
// limit are RATE_LIMITED with retryAfter. (Throttling over /token is
// httpapi's TestThrottleLogins.)
func TestThrottleAliasedLogins(t *testing.T) {
	ta := newTestApp(t, func(c *config) {
		c.auth.LoginUserLimit = auth.Limit{N: 3, Per: time.Minute}
		c.auth.LoginAddrLimit = auth.Limit{N: 8, Per: time.Minute}
	})
	ta.addUser("alice", alicePassword)
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 20 {
		fmt.Fprintf(&b, ` l%d: login(username: "alice", password: "wrong %d") { accessToken }`, i, i)
	}
	b.WriteString(" }")
	_, resp := ta.graphql("", b.String(), nil)
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
	resp2, body := ta.wrongLogin("alice", nil)
	wantThrottled(t, resp2, body)
}

// TestBcryptBound: with one bcrypt slot and a short wait, a storm of logins
// gets 503 for what cannot wait, and token-only requests are still served.
func TestBcryptBound(t *testing.T) {
	ta := newTestApp(t, func(c *config) {
		c.auth.BcryptCost = 10
		c.pool.workers = 1
		// Long enough that the worker, a thread at a lower priority, is
		// back for its next job even while other packages' tests load both
		// CPUs; far shorter than a cost-10 hash, so the storm must wait.
		c.pool.wait = 100 * time.Millisecond
		c.auth.LoginUserLimit = auth.Limit{N: 1000, Per: time.Minute}
		c.auth.LoginPairLimit = auth.Limit{N: 1000, Per: time.Minute}
		c.auth.LoginAddrLimit = auth.Limit{N: 1000, Per: time.Minute}
	})
	ta.addUser("alice", alicePassword)
	token := ta.login("alice", alicePassword).AccessToken

	const storm = 12
	var wg sync.WaitGroup
	statuses := make(chan int, storm)
	for range storm {
		wg.Go(func() {
			resp, body := ta.wrongLogin("alice", nil)
			if resp.StatusCode == 503 {
				wantOAuth(t, resp, body, 503, "temporarily_unavailable")
				if resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
			statuses <- resp.StatusCode
		})
	}
	wantMe(t, ta, token, "alice") // served while the storm runs
	_, resp := ta.graphql("", `mutation { a: login(username: "alice", password: "x1") { accessToken } b: login(username: "alice", password: "x2") { accessToken } }`, nil)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	// The one worker checks some password, the storm's or the GraphQL
	// logins' (whichever reached it first), and refuses what cannot wait.
	checked := count[400]
	for _, e := range resp.Errors {
		switch e.Extensions["code"] {
		case "INVALID_GRANT":
			checked++
		case "RATE_LIMITED":
		default:
			t.Errorf("GraphQL login under load: %+v", e)
		}
	}
	if count[503] == 0 || checked == 0 || count[400]+count[503] != storm {
		t.Errorf("statuses = %v, %d passwords checked; want some 400 and some 503", count, checked)
	}
}

// TestConcurrentSignupsOfOneUsername: exactly one wins, the rest are told
// the name is taken, and nothing fails inside.
func TestConcurrentSignupsOfOneUsername(t *testing.T) {
	ta := newTestApp(t, func(c *config) {
		c.pool.wait = time.Minute
		c.auth.SignupAddrLimit = auth.Limit{N: 1000, Per: time.Minute}
	})
	const n = 200
	codes := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, resp := ta.graphql("", `mutation($p: String!) { signup(input: {username: "popular", password: $p}) { accessToken } }`,
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

// TestBusyDatabase: while another process holds the write lock, writes fail
// fast with 503 and Retry-After (RATE_LIMITED in GraphQL), never a 500 or a
// misleading invalid_grant, and reads go on.
func TestBusyDatabase(t *testing.T) {
	dbPath := ""
	ta := newTestApp(t, func(c *config) {
		dbPath = c.dbPath
		c.db = db.Options{BusyTimeout: 50 * time.Millisecond, WriteWait: 300 * time.Millisecond}
	})
	ta.addUser("alice", alicePassword)
	access := ta.login("alice", alicePassword).AccessToken

	other, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	resp, body := ta.postToken(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
	wantOAuth(t, resp, body, 503, "temporarily_unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	_, gql := ta.graphql("", `mutation($p: String!) { signup(input: {username: "bob", password: $p}) { accessToken } }`, map[string]any{"p": alicePassword})
	if code := gql.code(t); code != "RATE_LIMITED" || gql.Errors[0].Extensions["retryAfter"] == nil {
		t.Errorf("signup while busy: %+v", gql.Errors)
	}
	wantMe(t, ta, access, "alice") // reads are not blocked

	conn.ExecContext(context.Background(), "ROLLBACK")
	ta.login("alice", alicePassword)
}

// TestRequestBounds sends oversized and abusive requests; each gets a clear
// error, and the server keeps serving.
func TestRequestBounds(t *testing.T) {
	ta := newTestApp(t, func(c *config) { c.http.MaxQueryBytes = 4096 })
	ta.addUser("alice", alicePassword)
	post := func(body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, ta.URL+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return ta.do(req)
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
		shallow := newTestApp(t, func(c *config) { c.graph.MaxDepth = 3 })
		_, resp := shallow.graphql("", `{ users { edges { node { id } } } }`, nil)
		if code := resp.code(t); code != "DEPTH_LIMIT_EXCEEDED" {
			t.Errorf("depth 4 over a limit of 3: %+v", resp.Errors)
		}
	})
	t.Run("GraphiQL's introspection query passes the defaults", func(t *testing.T) {
		_, resp := ta.graphql("", introspectionQuery, nil)
		if len(resp.Errors) != 0 || resp.Data["__schema"] == nil {
			t.Errorf("introspection: %+v", resp.Errors)
		}
	})
	t.Run("complexity", func(t *testing.T) {
		small := newTestApp(t, func(c *config) { c.graph.MaxComplexity = 5 })
		req, _ := http.NewRequest(http.MethodPost, small.URL+"/query", strings.NewReader(
			`{"query":"{ users { edges { node { id username email fullName disabled } } } }"}`))
		req.Header.Set("Content-Type", "application/json")
		if _, body := small.do(req); !strings.Contains(string(body), "COMPLEXITY_LIMIT_EXCEEDED") {
			t.Errorf("complexity: %s", body)
		}
	})
	t.Run("introspection and playground off", func(t *testing.T) {
		closed := newTestApp(t, func(c *config) { c.graph.Introspection, c.http.Playground = false, false })
		_, resp := closed.graphql("", `{ __schema { types { name } } }`, nil)
		if code := resp.code(t); code != "INTROSPECTION_DISABLED" {
			t.Errorf("introspection off: %+v", resp)
		}
		if _, resp := closed.graphql("", `{ __typename }`, nil); len(resp.Errors) != 0 {
			t.Errorf("__typename with introspection off: %+v", resp.Errors)
		}
		if r, _ := closed.do(mustRequest(t, http.MethodGet, closed.URL+"/")); r.StatusCode != 404 {
			t.Errorf("playground off: GET / = %d; want 404", r.StatusCode)
		}
		if _, resp := ta.graphql("", `{ __schema { queryType { name } } }`, nil); len(resp.Errors) != 0 {
			t.Errorf("introspection on: %+v", resp.Errors)
		}
	})
}

// introspectionQuery is graphql-js's getIntrospectionQuery() with every
// option on, as GraphiQL sends it.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}`

// TestSlowAndOversizedClients runs the real server (with its timeouts and
// header limit) and sends a slowloris client and an oversized header; each
// is cut off, and the server keeps serving.
func TestSlowAndOversizedClients(t *testing.T) {
	base, _ := startRun(t, map[string]string{
		"DB_PATH":             filepath.Join(t.TempDir(), "authql.db"),
		"READ_HEADER_TIMEOUT": "300ms",
		"MAX_HEADER_BYTES":    "4096",
	})
	healthy := func() {
		t.Helper()
		resp, err := http.Get(base + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("server after the abuse: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	t.Run("slow client", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "POST /token HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 20 { // trickle a header byte every 50ms
			if _, err := conn.Write([]byte("X")); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		buf := make([]byte, 512)
		n, _ := conn.Read(buf) // the server gives up on the headers and closes
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("the slow connection was held %v", took)
		}
		if n > 0 && !strings.Contains(string(buf[:n]), "408") && !strings.Contains(string(buf[:n]), "400") {
			t.Errorf("answer to a slow client: %q", buf[:n])
		}
		healthy()
	})
	t.Run("oversized header", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", 8192))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status = %d; want 431", resp.StatusCode)
		}
		healthy()
	})
}
