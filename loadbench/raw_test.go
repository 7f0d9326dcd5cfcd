package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRawRequest: the raw load reads each answer whole over one kept
// connection, checks it, and opens a new connection when the server closed
// the idle one or asked to close it.
func TestRawRequest(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer t" || string(body) != `{"q":1}` {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Query().Has("close") {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprintf(w, `{"ok":%q}`, strings.Repeat("x", 100))
	}))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	check := func(status int, body []byte) error {
		if status != 200 || !strings.HasPrefix(string(body), `{"ok":"xxx`) {
			return fmt.Errorf("%d %s", status, body)
		}
		return nil
	}
	header := http.Header{"Authorization": {"Bearer t"}}
	req := newRawRequest([]string{srv.URL}, http.MethodPost, "/query", header, `{"q":1}`, check)
	defer req.close()
	for range 3 {
		if err := req.do(0); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 requests on %d connections; want 1", n)
	}
	time.Sleep(200 * time.Millisecond) // the server closes the idle connection
	if err := req.do(0); err != nil {
		t.Errorf("after the server closed the idle connection: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2", n)
	}

	closing := newRawRequest([]string{srv.URL}, http.MethodPost, "/query?close", header, `{"q":1}`, check)
	defer closing.close()
	for range 2 {
		if err := closing.do(0); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections; want 4 (2 with Connection: close)", n)
	}

	bad := newRawRequest([]string{srv.URL}, http.MethodPost, "/query", http.Header{}, `{"q":1}`, check)
	defer bad.close()
	if err := bad.do(0); err == nil || !strings.HasPrefix(err.Error(), "400") {
		t.Errorf("a 400 answer: err %v", err)
	}
}
