package graph_test

// The tests of this package (graph_test) drive the GraphQL handler as
// clients reach it: behind the real HTTP edge. They are an external test
// package because they import httpapi, which graph itself must never do.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db"
	"authql/graph"
	"authql/httpapi"
)

const (
	alicePassword = "correct horse battery staple"
	appSecret     = "app secret: 100% & more+"
)

// config is what a test may change of the server: the service's
// configuration and the options of the two edges, which the root package's
// config binds to settings.
type config struct {
	auth  auth.Config
	http  httpapi.Options
	graph graph.Options
}

// testServer is graph's handler behind the real HTTP edge, wired as
// server.go's newApp wires them, over a service on a real SQLite file in a
// temporary directory, behind a real HTTP server.
type testServer struct {
	*httptest.Server
	svc   *auth.Service
	db    *db.DB
	clock *authtest.Clock
	logs  *authtest.Logs
	// secret is the service's access token signing key.
	secret []byte
	t      testing.TB
}

// newTestServer starts the server with authtest's service configuration
// (the cheapest bcrypt cost, known secrets, a settable clock), the
// server's default refresh token lifetime and limits, and CORS for any
// origin; edit may change the configuration. The playground is off: no
// test here asks for GET /.
func newTestServer(tb testing.TB, edit ...func(*config)) *testServer {
	tb.Helper()
	logs := &authtest.Logs{}
	var logTo io.Writer = logs
	if _, bench := tb.(*testing.B); bench {
		logTo = io.Discard // a benchmark's log would grow without end
	}
	logger := slog.New(httpapi.LogHandler(slog.NewTextHandler(logTo, nil)))
	c := config{
		http:  httpapi.Options{CORSOrigins: []string{"*"}, MaxQueryBytes: 128 << 10},
		graph: graph.DefaultOptions,
	}
	svc, store, clock := authtest.MustService(tb, func(ac *auth.Config) {
		ac.RefreshTokenTTL = 720 * time.Hour
		ac.Logger = logger
		c.auth = *ac
		for _, e := range edit {
			e(&c)
		}
		*ac = c.auth
	})

	// As newApp in server.go.
	gql := c.graph
	gql.Origin, gql.RequestID = httpapi.RequestOrigin, httpapi.RequestID
	edge := c.http
	edge.Service, edge.GraphQL, edge.RefuseBearer = svc, graph.NewHandler(svc, logger, gql), graph.WriteAuthError
	edge.Ping, edge.Logger = store.Ping, logger
	handler, err := httpapi.NewHandler(edge)
	if err != nil {
		tb.Fatal(err)
	}

	srv := httptest.NewServer(handler)
	tb.Cleanup(srv.Close) // before the database closes
	return &testServer{Server: srv, svc: svc, db: store, clock: clock, logs: logs, secret: c.auth.Secret, t: tb}
}

func (ts *testServer) addUser(username, password string, scopes ...string) *auth.User {
	ts.t.Helper()
	return authtest.MustCreateUser(ts.t, ts.svc, username, password, scopes...)
}

// registerClient registers a client through the service, as the CLI does.
func (ts *testServer) registerClient(nc auth.NewClient) {
	ts.t.Helper()
	if _, err := ts.svc.RegisterClient(context.Background(), nc); err != nil {
		ts.t.Fatal(err)
	}
}

// do sends a request and returns the response with its body read.
func (ts *testServer) do(req *http.Request) (*http.Response, []byte) {
	ts.t.Helper()
	resp, err := ts.Client().Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp, body
}

// postOAuth posts form to path with an optional Authorization header.
func (ts *testServer) postOAuth(path string, form url.Values, authorization string) (*http.Response, []byte) {
	ts.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return ts.do(req)
}

// postToken posts form to /token.
func (ts *testServer) postToken(form url.Values) (*http.Response, []byte) {
	ts.t.Helper()
	return ts.postOAuth("/token", form, "")
}

// wrongLogin tries a wrong password for username over /token.
func (ts *testServer) wrongLogin(username string) (*http.Response, []byte) {
	ts.t.Helper()
	return ts.postToken(url.Values{"grant_type": {"password"}, "username": {username}, "password": {"not the password"}})
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
func (ts *testServer) login(username, password string) tokens {
	ts.t.Helper()
	resp, body := ts.postToken(url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password},
	})
	if resp.StatusCode != http.StatusOK {
		ts.t.Fatalf("login %s: %d %s", username, resp.StatusCode, body)
	}
	var tok tokens
	if err := json.Unmarshal(body, &tok); err != nil {
		ts.t.Fatal(err)
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
func (ts *testServer) graphql(token, query string, vars map[string]any) (*http.Response, gqlResponse) {
	ts.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, raw := ts.do(req)
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		ts.t.Fatalf("GraphQL response %d is not JSON: %s", resp.StatusCode, raw)
	}
	return resp, out
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

// wantMe checks that accessToken is username's in { me }.
func wantMe(tb testing.TB, ts *testServer, accessToken, username string) {
	tb.Helper()
	_, resp := ts.graphql(accessToken, `{ me { username } }`, nil)
	var me struct{ Username string }
	decode(tb, resp, "me", &me)
	if me.Username != username {
		tb.Errorf("me = %+v (errors %+v); want %s", me, resp.Errors, username)
	}
}

// meStatus is the status of { me { id } } with accessToken.
func meStatus(t *testing.T, base, accessToken string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// basicAuth encodes client credentials as RFC 6749 Appendix B asks:
// form-urlencoded, then HTTP Basic.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
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

// wantThrottled checks an OAuth2 endpoint's 429, with Retry-After in whole
// seconds.
func wantThrottled(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	wantOAuth(t, resp, body, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q; want whole seconds", resp.Header.Get("Retry-After"))
	}
}
