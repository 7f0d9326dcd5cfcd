package authtest

// What the tests of httpapi, graph and the root package share as clients of
// a running server: its answers' types, requests, and checks of what the
// OAuth2 endpoints and GraphQL answer. Each harness keeps a thin layer of
// methods over them for its own server.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

const (
	// AlicePassword is the password the tests give their users.
	AlicePassword = "correct horse battery staple"
	// AppSecret is a confidential client's secret with characters that
	// HTTP Basic must form-encode (RFC 6749 Appendix B).
	AppSecret = "app secret: 100% & more+"
)

// Tokens is a successful /token response body.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// OAuthError is an RFC 6749 section 5.2 error body.
type OAuthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// Do sends req with client and returns the response with its body read,
// failing the test if it cannot.
func Do(tb testing.TB, client *http.Client, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

// PostForm posts form to endpoint with client, with an Authorization
// header when authorization is not "".
func PostForm(tb testing.TB, client *http.Client, endpoint string, form url.Values, authorization string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return Do(tb, client, req)
}

// PasswordGrant is the form of the password grant (RFC 6749 section 4.3.2)
// for username and password.
func PasswordGrant(username, password string) url.Values {
	return url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
}

// Login runs the password grant at tokenURL and fails the test unless it
// succeeds.
func Login(tb testing.TB, client *http.Client, tokenURL, username, password string) Tokens {
	tb.Helper()
	resp, body := PostForm(tb, client, tokenURL, PasswordGrant(username, password), "")
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("login %s: %d %s", username, resp.StatusCode, body)
	}
	var tok Tokens
	if err := json.Unmarshal(body, &tok); err != nil {
		tb.Fatal(err)
	}
	return tok
}

// BasicAuth encodes client credentials as RFC 6749 Appendix B asks:
// form-urlencoded, then HTTP Basic.
func BasicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// WantOAuth checks status, error code and cache headers of an OAuth2
// endpoint's response: with a code, a body with that error and a
// description, and for invalid_client the Basic challenge.
func WantOAuth(tb testing.TB, resp *http.Response, body []byte, status int, code string) {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Errorf("status = %d; want %d (%s)", resp.StatusCode, status, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
		tb.Errorf("cache headers = %q %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
	}
	if code == "" {
		return
	}
	var e OAuthError
	json.Unmarshal(body, &e)
	if e.Error != code || e.Description == "" {
		tb.Errorf("body = %s; want error %s with a description", body, code)
	}
	if code == "invalid_client" && resp.Header.Get("WWW-Authenticate") != `Basic realm="authql"` {
		tb.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
}

// WantThrottled checks an OAuth2 endpoint's 429, with Retry-After in whole
// seconds.
func WantThrottled(tb testing.TB, resp *http.Response, body []byte) {
	tb.Helper()
	WantOAuth(tb, resp, body, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		tb.Errorf("Retry-After = %q; want whole seconds", resp.Header.Get("Retry-After"))
	}
}

// GraphQLResponse is a GraphQL response body.
type GraphQLResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []GraphQLError             `json:"errors"`
}

// GraphQLError is one of a GraphQL response's errors.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns extensions.code of the only error, failing otherwise.
func (r GraphQLResponse) Code(tb testing.TB) string {
	tb.Helper()
	if len(r.Errors) != 1 {
		tb.Fatalf("errors = %+v; want one", r.Errors)
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// Decode unmarshals the data field name into v, failing the test if there
// is none.
func (r GraphQLResponse) Decode(tb testing.TB, name string, v any) {
	tb.Helper()
	raw, ok := r.Data[name]
	if !ok {
		tb.Fatalf("no data.%s in %+v", name, r)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("data.%s: %v", name, err)
	}
}

// GraphQL posts a GraphQL request to queryURL with client, with a bearer
// token when token is not "", and decodes the answer.
func GraphQL(tb testing.TB, client *http.Client, queryURL, token, query string, vars map[string]any) (*http.Response, GraphQLResponse) {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, queryURL, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, raw := Do(tb, client, req)
	var out GraphQLResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("GraphQL response %d is not JSON: %s", resp.StatusCode, raw)
	}
	return resp, out
}

// WantMe checks that accessToken is username's, by { me { username } } at
// queryURL.
func WantMe(tb testing.TB, client *http.Client, queryURL, accessToken, username string) {
	tb.Helper()
	_, resp := GraphQL(tb, client, queryURL, accessToken, `{ me { username } }`, nil)
	var me struct{ Username string }
	resp.Decode(tb, "me", &me)
	if me.Username != username {
		tb.Errorf("me = %+v (errors %+v); want %s", me, resp.Errors, username)
	}
}

// MeStatus is the status of { me { id } } with accessToken at the server
// at base, by http.DefaultClient.
func MeStatus(tb testing.TB, base, accessToken string) int {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// LegacyChild is the child refresh token that the earlier derivation made
// from parent with the signing key: what an attacker holding the key would
// compute.
func LegacyChild(signingKey []byte, parent string) string {
	mac := hmac.New(sha256.New, signingKey)
	mac.Write([]byte("authql refresh token rotation"))
	derive := hmac.New(sha256.New, mac.Sum(nil))
	derive.Write([]byte(parent))
	return base64.RawURLEncoding.EncodeToString(derive.Sum(nil))
}
