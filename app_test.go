package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

const testSecret = "a test secret of at least thirty-two bytes"

const alicePassword = "correct horse battery staple"

// syncBuffer collects the server's log lines from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testApp is authql as newApp builds it, on a real SQLite file in a
// temporary directory, behind a real HTTP server.
type testApp struct {
	*httptest.Server
	app   *app
	clock *authtest.Clock
	logs  *syncBuffer
	// dbPath is the SQLite file.
	dbPath string
	t      testing.TB
}

// newTestApp starts authql with the cheapest bcrypt cost, a known secret and
// a settable clock; edit may change the configuration.
func newTestApp(t testing.TB, edit ...func(*config)) *testApp {
	t.Helper()
	c := authtest.NewClock(time.Now().UTC())
	cfg := defaultConfig()
	cfg.dbPath = filepath.Join(t.TempDir(), "authql.db")
	cfg.auth.Secret = []byte(testSecret)
	cfg.auth.BcryptCost = 4
	cfg.auth.Now = c.Now
	for _, e := range edit {
		e(&cfg)
	}
	logs := &syncBuffer{}
	var logTo io.Writer = logs
	if _, bench := t.(*testing.B); bench {
		logTo = io.Discard // a benchmark's log would grow without end
	}
	a, err := newApp(context.Background(), cfg, newLogger("text", logTo))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &testApp{Server: srv, app: a, clock: c, logs: logs, dbPath: cfg.dbPath, t: t}
}

func (ta *testApp) addUser(username, password string, scopes ...string) *auth.User {
	ta.t.Helper()
	u, err := ta.app.service.CreateUser(context.Background(), auth.NewUser{
		Username: username, Password: password, Scopes: scopes,
	})
	if err != nil {
		ta.t.Fatal(err)
	}
	return u
}

// do sends a request and returns the response with its body read.
func (ta *testApp) do(req *http.Request) (*http.Response, []byte) {
	ta.t.Helper()
	resp, err := ta.Client().Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatal(err)
	}
	return resp, body
}

// postToken posts form to /token.
func (ta *testApp) postToken(form url.Values) (*http.Response, []byte) {
	ta.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ta.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return ta.do(req)
}

// tokens is a successful /token response body.
type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// login runs the password grant and fails the test unless it succeeds.
func (ta *testApp) login(username, password string) tokens {
	ta.t.Helper()
	resp, body := ta.postToken(url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password},
	})
	if resp.StatusCode != http.StatusOK {
		ta.t.Fatalf("login %s: %d %s", username, resp.StatusCode, body)
	}
	var tok tokens
	if err := json.Unmarshal(body, &tok); err != nil {
		ta.t.Fatal(err)
	}
	return tok
}

// gqlResponse is a GraphQL response body.
type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// code returns extensions.code of the only error, failing otherwise.
func (r gqlResponse) code(tb testing.TB) string {
	tb.Helper()
	if len(r.Errors) != 1 {
		tb.Fatalf("errors = %+v; want one", r.Errors)
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// graphql posts a GraphQL request, with a bearer token when token is not "".
func (ta *testApp) graphql(token, query string, vars map[string]any) (*http.Response, gqlResponse) {
	ta.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, ta.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, raw := ta.do(req)
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		ta.t.Fatalf("GraphQL response %d is not JSON: %s", resp.StatusCode, raw)
	}
	return resp, out
}

// wantMe checks that accessToken is username's, by the me query.
func wantMe(tb testing.TB, ta *testApp, accessToken, username string) {
	tb.Helper()
	_, resp := ta.graphql(accessToken, `{ me { username } }`, nil)
	var me struct{ Username string }
	decode(tb, resp, "me", &me)
	if me.Username != username {
		tb.Errorf("me = %+v (errors %+v); want %s", me, resp.Errors, username)
	}
}

// oauthError is an RFC 6749 section 5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// wantOAuth checks status, error code and cache headers of an OAuth2
// endpoint's response.
func wantOAuth(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d; want %d (%s)", resp.StatusCode, status, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
		t.Errorf("cache headers = %q %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
	}
	if code == "" {
		return
	}
	var e oauthError
	json.Unmarshal(body, &e)
	if e.Error != code || e.Description == "" {
		t.Errorf("body = %s; want error %s with a description", body, code)
	}
	if code == "invalid_client" && resp.Header.Get("WWW-Authenticate") != `Basic realm="authql"` {
		t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
}

// decode unmarshals the data field name of r into v.
func decode(tb testing.TB, r gqlResponse, name string, v any) {
	tb.Helper()
	raw, ok := r.Data[name]
	if !ok {
		tb.Fatalf("no data.%s in %+v", name, r)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("data.%s: %v", name, err)
	}
}

func decodeJSON(tb testing.TB, r io.Reader, v any) {
	tb.Helper()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		tb.Fatal(err)
	}
}
