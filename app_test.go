package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

const testSecret = "a test secret of at least thirty-two bytes"

// alicePassword is the password of the tests' users.
const alicePassword = authtest.AlicePassword

// testApp is authql as newApp builds it, on a real SQLite file in a
// temporary directory, behind a real HTTP server.
type testApp struct {
	*httptest.Server
	app *app
	// dbPath is the SQLite file.
	dbPath string
	t      testing.TB
}

// newTestApp starts authql with the cheapest bcrypt cost, a known secret and
// a clock that stands still; edit may change the configuration. Its log is
// discarded: no test here reads it.
func newTestApp(t testing.TB, edit ...func(*config)) *testApp {
	t.Helper()
	c := authtest.NewClock(time.Now().UTC())
	cfg := defaultConfig()
	cfg.store.path = filepath.Join(t.TempDir(), "authql.db")
	cfg.auth.Secret = []byte(testSecret)
	cfg.auth.BcryptCost = 4
	cfg.auth.Now = c.Now
	for _, e := range edit {
		e(&cfg)
	}
	a, err := newApp(context.Background(), cfg, newLogger("text", io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &testApp{Server: srv, app: a, dbPath: cfg.store.path, t: t}
}

func (ta *testApp) addUser(username, password string, scopes ...string) *auth.User {
	ta.t.Helper()
	return authtest.MustCreateUser(ta.t, ta.app.service, username, password, scopes...)
}

// do sends a request and returns the response with its body read.
func (ta *testApp) do(req *http.Request) (*http.Response, []byte) {
	ta.t.Helper()
	return authtest.Do(ta.t, ta.Client(), req)
}

// postToken posts form to /token.
func (ta *testApp) postToken(form url.Values) (*http.Response, []byte) {
	ta.t.Helper()
	return authtest.PostForm(ta.t, ta.Client(), ta.URL+"/token", form, "")
}

// wrongLogin tries a wrong password for username over /token.
func (ta *testApp) wrongLogin(username string) (*http.Response, []byte) {
	ta.t.Helper()
	return ta.postToken(authtest.PasswordGrant(username, "not the password"))
}

// login runs the password grant and fails the test unless it succeeds.
func (ta *testApp) login(username, password string) authtest.Tokens {
	ta.t.Helper()
	return authtest.Login(ta.t, ta.Client(), ta.URL+"/token", username, password)
}

// graphql posts a GraphQL request, with a bearer token when token is not "".
func (ta *testApp) graphql(token, query string, vars map[string]any) (*http.Response, authtest.GraphQLResponse) {
	ta.t.Helper()
	return authtest.GraphQL(ta.t, ta.Client(), ta.URL+"/query", token, query, vars)
}

// wantMe checks that accessToken is username's, by the me query.
func wantMe(tb testing.TB, ta *testApp, accessToken, username string) {
	tb.Helper()
	authtest.WantMe(tb, ta.Client(), ta.URL+"/query", accessToken, username)
}
