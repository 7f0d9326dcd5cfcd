package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/sqlite"
)

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
			resp, body := ta.wrongLogin("alice")
			if resp.StatusCode == 503 {
				authtest.WantOAuth(t, resp, body, 503, "temporarily_unavailable")
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

// TestBusyDatabase: while another process holds the write lock, writes fail
// fast with 503 and Retry-After (RATE_LIMITED in GraphQL), never a 500 or a
// misleading invalid_grant, and reads go on.
func TestBusyDatabase(t *testing.T) {
	dbPath := ""
	ta := newTestApp(t, func(c *config) {
		dbPath = c.store.path
		c.store.sqlite = sqlite.Options{BusyTimeout: 50 * time.Millisecond, WriteWait: 300 * time.Millisecond}
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
	authtest.WantOAuth(t, resp, body, 503, "temporarily_unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	_, gql := ta.graphql("", `mutation($p: String!) { signup(input: {username: "bob", password: $p}) { accessToken } }`, map[string]any{"p": alicePassword})
	if code := gql.Code(t); code != "RATE_LIMITED" || gql.Errors[0].Extensions["retryAfter"] == nil {
		t.Errorf("signup while busy: %+v", gql.Errors)
	}
	wantMe(t, ta, access, "alice") // reads are not blocked

	conn.ExecContext(context.Background(), "ROLLBACK")
	ta.login("alice", alicePassword)
}

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
