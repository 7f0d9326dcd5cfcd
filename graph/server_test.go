package graph_test

// The tests of this package (graph_test) drive the GraphQL handler as
// clients reach it: behind the real HTTP edge. They are an external test
// package because they import httpapi, which graph itself must never do.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/sqlite"
	"authql/graph"
	"authql/httpapi"
)

// The password of the tests' users, and a client secret that HTTP Basic
// must form-encode.
const (
	alicePassword = authtest.AlicePassword
	appSecret     = authtest.AppSecret
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
	db    *sqlite.DB
	clock *authtest.Clock
	logs  *authtest.Logs
	// secret is the service's access token signing key.
	secret []byte
	t      testing.TB
}

// newTestServer starts the server with authtest's service configuration
// (the cheapest bcrypt cost, known secrets, a settable clock), the
// server's default refresh token lifetime and limits, and CORS for any
// origin; edit may change the configuration. The playground is off unless
// edit turns it on (c.http.Playground): no test here asks for the page.
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
	return authtest.Do(ts.t, ts.Client(), req)
}

// postOAuth posts form to path with an optional Authorization header.
func (ts *testServer) postOAuth(path string, form url.Values, authorization string) (*http.Response, []byte) {
	ts.t.Helper()
	return authtest.PostForm(ts.t, ts.Client(), ts.URL+path, form, authorization)
}

// postToken posts form to /token.
func (ts *testServer) postToken(form url.Values) (*http.Response, []byte) {
	ts.t.Helper()
	return ts.postOAuth("/token", form, "")
}

// wrongLogin tries a wrong password for username over /token.
func (ts *testServer) wrongLogin(username string) (*http.Response, []byte) {
	ts.t.Helper()
	return ts.postToken(authtest.PasswordGrant(username, "not the password"))
}

// login runs the password grant and fails the test unless it succeeds.
func (ts *testServer) login(username, password string) authtest.Tokens {
	ts.t.Helper()
	return authtest.Login(ts.t, ts.Client(), ts.URL+"/token", username, password)
}

// graphql posts a GraphQL request, with a bearer token when token is not "".
func (ts *testServer) graphql(token, query string, vars map[string]any) (*http.Response, authtest.GraphQLResponse) {
	ts.t.Helper()
	return authtest.GraphQL(ts.t, ts.Client(), ts.URL+"/query", token, query, vars)
}

// wantMe checks that accessToken is username's in { me }.
func wantMe(tb testing.TB, ts *testServer, accessToken, username string) {
	tb.Helper()
	authtest.WantMe(tb, ts.Client(), ts.URL+"/query", accessToken, username)
}
