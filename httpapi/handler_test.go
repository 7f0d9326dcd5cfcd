package httpapi_test

// The tests of the HTTP edge drive httpapi.NewHandler from outside, as
// server.go does, through its exported options only; the fuzz targets and
// the playground's tests, which reach unexported functions, are package
// httpapi.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/sqlite"
	"authql/httpapi"
)

// The password of the tests' users, and a client secret that HTTP Basic
// must form-encode.
const (
	alicePassword = authtest.AlicePassword
	appSecret     = authtest.AppSecret
)

// server is authql's HTTP edge as httpapi.NewHandler builds it, over a real
// auth.Service on a SQLite file in a temporary directory, behind a real HTTP
// server. /query is served by whoami, a stand-in for the GraphQL handler,
// and the bearer middleware's refusals are written by refuse, a stand-in for
// graph.WriteAuthError: tests see what the edge decided, not GraphQL.
type server struct {
	*httptest.Server
	handler http.Handler
	svc     *auth.Service
	db      *sqlite.DB
	clock   *authtest.Clock
	logs    *authtest.Logs
	// secret is the key that signs access tokens.
	secret []byte
	t      testing.TB
}

// config is what a test may change before newServer builds the edge: the
// service's configuration and the handler's options.
type config struct {
	auth *auth.Config
	http *httpapi.Options
}

// newServer starts the edge with authtest's service configuration (the
// cheapest bcrypt cost, a known secret, a settable clock) and the server's
// default options (any CORS origin, 128 KiB queries, the playground on);
// edit may change either. Its log goes to logs, as text.
func newServer(t testing.TB, edit ...func(config)) *server {
	t.Helper()
	logs := &authtest.Logs{}
	logger := slog.New(httpapi.LogHandler(slog.NewTextHandler(logs, nil)))
	opts := httpapi.Options{
		GraphQL:       http.HandlerFunc(whoami),
		RefuseBearer:  refuse,
		CORSOrigins:   []string{"*"},
		MaxQueryBytes: 128 << 10,
		Playground:    true,
		Logger:        logger,
	}
	var secret []byte
	svc, store, clock := authtest.MustService(t, func(c *auth.Config) {
		c.Logger = logger
		for _, e := range edit {
			e(config{auth: c, http: &opts})
		}
		secret = c.Secret
	})
	opts.Service, opts.Ping = svc, store.Ping
	h, err := httpapi.NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // before the database closes
	return &server{Server: srv, handler: h, svc: svc, db: store, clock: clock, logs: logs, secret: secret, t: t}
}

// identity is who the bearer middleware put in a request's context, as
// whoami tells it.
type identity struct {
	UserID    string   `json:"userId"`
	Username  string   `json:"username"`
	Scopes    []string `json:"scopes"`
	SessionID string   `json:"sessionId"`
	ClientID  string   `json:"clientId"`
}

// refusal is what the bearer middleware called refuse with.
type refusal struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

// answer is the body of a /query response: an identity (null when
// anonymous) from whoami, or a refusal from refuse.
type answer struct {
	Identity *identity `json:"identity"`
	Refused  *refusal  `json:"refused,omitempty"`
}

// whoami stands in for the GraphQL handler: 200 and the identity of the
// request's context.
func whoami(w http.ResponseWriter, r *http.Request) {
	var a answer
	if id := auth.IdentityFrom(r.Context()); id != nil {
		a.Identity = &identity{
			UserID: id.User.ID, Username: id.User.Username, Scopes: id.Scopes,
			SessionID: id.SessionID, ClientID: id.ClientID,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a)
}

// refuse stands in for graph.WriteAuthError: it writes what it was called
// with.
func refuse(w http.ResponseWriter, r *http.Request, status int, e *auth.Error, requestID string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(answer{Refused: &refusal{
		Status: status, Code: string(e.Code), Message: e.Message, RequestID: requestID,
	}})
}

func (s *server) addUser(username, password string, scopes ...string) *auth.User {
	s.t.Helper()
	return authtest.MustCreateUser(s.t, s.svc, username, password, scopes...)
}

// registerClient registers a client through the service, as the CLI does.
func (s *server) registerClient(nc auth.NewClient) {
	s.t.Helper()
	if _, err := s.svc.RegisterClient(context.Background(), nc); err != nil {
		s.t.Fatal(err)
	}
}

// newRequest is http.NewRequest for the server's URL plus path, failing
// the test on error.
func (s *server) newRequest(method, path string, body io.Reader) *http.Request {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	return req
}

// do sends a request and returns the response with its body read.
func (s *server) do(req *http.Request) (*http.Response, []byte) {
	s.t.Helper()
	return authtest.Do(s.t, s.Client(), req)
}

// postOAuth posts form to path with an optional Authorization header.
func (s *server) postOAuth(path string, form url.Values, authorization string) (*http.Response, []byte) {
	s.t.Helper()
	return authtest.PostForm(s.t, s.Client(), s.URL+path, form, authorization)
}

// postToken posts form to /token.
func (s *server) postToken(form url.Values) (*http.Response, []byte) {
	s.t.Helper()
	return s.postOAuth("/token", form, "")
}

// login runs the password grant and fails the test unless it succeeds.
func (s *server) login(username, password string) authtest.Tokens {
	s.t.Helper()
	return authtest.Login(s.t, s.Client(), s.URL+"/token", username, password)
}

// query posts to /query with an Authorization header for each of
// authorization, and decodes the answer.
func (s *server) query(authorization ...string) (*http.Response, answer) {
	s.t.Helper()
	req := s.newRequest(http.MethodPost, "/query", strings.NewReader(`{"query":"{ me { username } }"}`))
	req.Header.Set("Content-Type", "application/json")
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	resp, body := s.do(req)
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		s.t.Fatalf("/query answered %d, not JSON: %s", resp.StatusCode, body)
	}
	return resp, a
}

// queryStatus is the status of /query with accessToken.
func (s *server) queryStatus(accessToken string) int {
	s.t.Helper()
	resp, _ := s.query("Bearer " + accessToken)
	return resp.StatusCode
}

// wantUser checks that the bearer middleware takes accessToken for
// username's.
func wantUser(tb testing.TB, s *server, accessToken, username string) {
	tb.Helper()
	resp, a := s.query("Bearer " + accessToken)
	if resp.StatusCode != http.StatusOK || a.Identity == nil || a.Identity.Username != username {
		tb.Errorf("/query with the token: %d, identity %+v, refusal %+v; want %s", resp.StatusCode, a.Identity, a.Refused, username)
	}
}

// wantRefused checks that the bearer middleware refused a /query request
// with status and code: refuse was called with them, a message, and the
// request's id.
func wantRefused(tb testing.TB, resp *http.Response, a answer, status int, code auth.Code) {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Errorf("status = %d; want %d", resp.StatusCode, status)
	}
	switch r := a.Refused; {
	case r == nil:
		tb.Errorf("not refused: identity %+v; want %s", a.Identity, code)
	case r.Code != string(code) || r.Status != status || r.Message == "":
		tb.Errorf("refused with %+v; want status %d, code %s and a message", *r, status, code)
	case r.RequestID == "" || r.RequestID != resp.Header.Get("X-Request-Id"):
		tb.Errorf("refused with request id %q; want X-Request-Id %q", r.RequestID, resp.Header.Get("X-Request-Id"))
	}
}

// claimsOf returns the claims of a token the server issued, unverified.
func claimsOf(tb testing.TB, token string) jwt.MapClaims {
	tb.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		tb.Fatal(err)
	}
	return claims
}

// TestSecurityHeaders: every response carries them; the playground page gets
// a policy that allows its own inline script by hash, and nothing inline
// else.
func TestSecurityHeaders(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/", "/healthz", "/query?query=%7B__typename%7D", "/.well-known/oauth-authorization-server", "/nope"} {
		resp, _ := s.do(s.newRequest(http.MethodGet, path, nil))
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s: %s = %q; want %q", path, k, got, want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		switch {
		case path == "/" && (!strings.Contains(csp, "script-src 'self' 'sha256-") || strings.Contains(csp, "cdn") || strings.Contains(csp, "script-src 'unsafe-inline'")):
			t.Errorf("playground CSP = %q", csp)
		case path != "/" && csp != "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'":
			t.Errorf("%s: CSP = %q", path, csp)
		}
	}
	req := s.newRequest(http.MethodOptions, "/query", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, _ := s.do(req)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Max-Age") == "" ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	listed := newServer(t, func(c config) { c.http.CORSOrigins = []string{"https://app.example.com"} })
	for origin, want := range map[string]string{"https://app.example.com": "https://app.example.com", "https://evil.example.com": ""} {
		req := listed.newRequest(http.MethodOptions, "/query", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, _ := listed.do(req)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("origin %s: Allow-Origin %q; want %q", origin, got, want)
		}
	}
}
