package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"authql/auth"
)

// registerClient registers a client through the service, as the CLI does.
func (ta *testApp) registerClient(nc auth.NewClient) {
	ta.t.Helper()
	if _, err := ta.app.service.RegisterClient(context.Background(), nc); err != nil {
		ta.t.Fatal(err)
	}
}

// postOAuth posts form to path with an optional Authorization header.
func (ta *testApp) postOAuth(path string, form url.Values, authorization string) (*http.Response, []byte) {
	ta.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ta.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return ta.do(req)
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

const appSecret = "app secret: 100% & more+"

// TestClientAuthentication is RFC 6749 section 2.3.1 against registered
// clients.
func TestClientAuthentication(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword, "users:read", "users:write")
	ta.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	ta.registerClient(auth.NewClient{ID: "id:with spaces&more", Secret: appSecret})
	ta.registerClient(auth.NewClient{ID: "spa", GrantTypes: []string{auth.GrantPassword}})
	ta.registerClient(auth.NewClient{ID: "reader", Secret: appSecret, Scopes: []string{"users:read"}})
	password := func(extra ...string) url.Values {
		v := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}

	for _, tc := range []struct {
		name      string
		form      url.Values
		auth      string
		status    int
		code      string
		wantScope string
	}{
		{name: "Basic", form: password(), auth: basicAuth("app", appSecret), status: 200, wantScope: "users:read users:write"},
		{name: "body", form: password("client_id", "app", "client_secret", appSecret), status: 200},
		{name: "Basic with encoded characters in id and secret", form: password(), auth: basicAuth("id:with spaces&more", appSecret), status: 200},
		{name: "Basic without form-encoding", form: password(), auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("app:"+appSecret)), status: 401, code: "invalid_client"},
		{name: "both methods", form: password("client_secret", appSecret), auth: basicAuth("app", appSecret), status: 400, code: "invalid_request"},
		{name: "wrong secret in Basic", form: password(), auth: basicAuth("app", "wrong secret"), status: 401, code: "invalid_client"},
		{name: "wrong secret in body", form: password("client_id", "app", "client_secret", "wrong secret"), status: 401, code: "invalid_client"},
		{name: "confidential client without its secret", form: password("client_id", "app"), status: 401, code: "invalid_client"},
		{name: "unknown client with a secret", form: password("client_id", "nope", "client_secret", appSecret), status: 401, code: "invalid_client"},
		{name: "unknown client in Basic", form: password(), auth: basicAuth("nope", appSecret), status: 401, code: "invalid_client"},
		{name: "unregistered public client_id", form: password("client_id", "some-cli"), status: 200},
		{name: "public client", form: password("client_id", "spa"), status: 200},
		{name: "public client presenting a secret", form: password("client_id", "spa", "client_secret", appSecret), status: 401, code: "invalid_client"},
		{name: "grant the client may not use", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"spa"}}, status: 400, code: "unauthorized_client"},
		{name: "client scopes narrow the token", form: password(), auth: basicAuth("reader", appSecret), status: 200, wantScope: "users:read"},
		{name: "scope beyond the client", form: password("scope", "users:write"), auth: basicAuth("reader", appSecret), status: 400, code: "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ta.postOAuth("/token", tc.form, tc.auth)
			wantOAuth(t, resp, body, tc.status, tc.code)
			if tc.wantScope != "" {
				var tok tokens
				json.Unmarshal(body, &tok)
				if tok.Scope != tc.wantScope {
					t.Errorf("scope = %q; want %q", tok.Scope, tc.wantScope)
				}
			}
		})
	}
}

// A refresh token works only for the client it was issued to, and the
// client's id rides in the access token.
func TestRefreshTokenBoundToClient(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword)
	ta.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ta.Client())
	conf := &oauth2.Config{ClientID: "app", ClientSecret: appSecret, Endpoint: oauth2.Endpoint{TokenURL: ta.URL + "/token"}}
	tok, err := conf.PasswordCredentialsToken(ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if got := claimsOf(t, tok.AccessToken)["client_id"]; got != "app" {
		t.Errorf("client_id claim = %v; want app", got)
	}
	for name, auth := range map[string]string{"first-party": "", "another client": basicAuth("other", "")} {
		resp, body := ta.postOAuth("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, auth)
		t.Run(name, func(t *testing.T) { wantOAuth(t, resp, body, 400, "invalid_grant") })
	}
	resp, body := ta.postOAuth("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, basicAuth("app", appSecret))
	wantOAuth(t, resp, body, 200, "")
}

// TestRevoke is RFC 7009 section 2.
func TestRevoke(t *testing.T) {
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword)
	ta.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	login := func(authorization string) tokens {
		t.Helper()
		resp, body := ta.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, authorization)
		if resp.StatusCode != 200 {
			t.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		var tok tokens
		json.Unmarshal(body, &tok)
		return tok
	}
	refreshStatus := func(tok tokens, authorization string) int {
		resp, _ := ta.postOAuth("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, authorization)
		return resp.StatusCode
	}

	t.Run("refresh token ends its session", func(t *testing.T) {
		tok, other := login(""), login("")
		resp, body := ta.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, "")
		wantOAuth(t, resp, body, 200, "")
		if s := meStatus(t, ta.URL, tok.AccessToken); s != 401 {
			t.Errorf("access token of the session: %d; want 401", s)
		}
		if s := refreshStatus(tok, ""); s != 400 {
			t.Errorf("refresh token: %d; want 400", s)
		}
		if s := meStatus(t, ta.URL, other.AccessToken); s != 200 {
			t.Errorf("another session: %d; want 200", s)
		}
	})
	t.Run("access token ends its session", func(t *testing.T) {
		tok := login("")
		resp, body := ta.postOAuth("/revoke", url.Values{"token": {tok.AccessToken}}, "")
		wantOAuth(t, resp, body, 200, "")
		if s := refreshStatus(tok, ""); s != 400 {
			t.Errorf("refresh token of the session: %d; want 400", s)
		}
	})
	t.Run("wrong hint", func(t *testing.T) {
		tok := login("")
		resp, body := ta.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}, "")
		wantOAuth(t, resp, body, 200, "")
		if s := refreshStatus(tok, ""); s != 400 {
			t.Errorf("refresh token: %d; want 400", s)
		}
	})
	t.Run("confidential client revokes its token", func(t *testing.T) {
		tok := login(basicAuth("app", appSecret))
		resp, body := ta.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}}, "")
		wantOAuth(t, resp, body, 400, "unauthorized_client")
		resp, body = ta.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}}, basicAuth("app", "wrong secret"))
		wantOAuth(t, resp, body, 401, "invalid_client")
		if s := meStatus(t, ta.URL, tok.AccessToken); s != 200 {
			t.Errorf("after refused revocations: %d; want 200", s)
		}
		resp, body = ta.postOAuth("/revoke", url.Values{"token": {tok.RefreshToken}}, basicAuth("app", appSecret))
		wantOAuth(t, resp, body, 200, "")
		if s := meStatus(t, ta.URL, tok.AccessToken); s != 401 {
			t.Errorf("after revocation: %d; want 401", s)
		}
	})

	revoked := login("")
	ta.postOAuth("/revoke", url.Values{"token": {revoked.RefreshToken}}, "")
	for _, tc := range []struct {
		name   string
		method string
		target string
		form   url.Values
		status int
		code   string
	}{
		{name: "unknown token", form: url.Values{"token": {"no-such-token"}}, status: 200},
		{name: "already revoked", form: url.Values{"token": {revoked.RefreshToken}}, status: 200},
		{name: "already revoked access token", form: url.Values{"token": {revoked.AccessToken}}, status: 200},
		{name: "unknown hint", form: url.Values{"token": {"x"}, "token_type_hint": {"id_token"}}, status: 200},
		{name: "token missing", form: url.Values{"token_type_hint": {"refresh_token"}}, status: 400, code: "invalid_request"},
		{name: "token repeated", form: url.Values{"token": {"a", "b"}}, status: 400, code: "invalid_request"},
		{name: "query string", target: "/revoke?token=x", form: url.Values{"token": {"x"}}, status: 400, code: "invalid_request"},
		{name: "GET", method: "GET", status: 405, code: "invalid_request"},
		{name: "unknown client with secret", form: url.Values{"token": {"x"}, "client_id": {"nope"}, "client_secret": {"whatever1"}}, status: 401, code: "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, target := tc.method, tc.target
			if method == "" {
				method = http.MethodPost
			}
			if target == "" {
				target = "/revoke"
			}
			req, _ := http.NewRequest(method, ta.URL+target, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := ta.do(req)
			wantOAuth(t, resp, body, tc.status, tc.code)
			if tc.status == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
}

// TestMetadata is RFC 8414 section 3.
func TestMetadata(t *testing.T) {
	get := func(ta *testApp, host string) map[string]any {
		t.Helper()
		req := mustRequest(t, http.MethodGet, ta.URL+"/.well-known/oauth-authorization-server")
		if host != "" {
			req.Host = host
		}
		resp, body := ta.do(req)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("metadata: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	ta := newTestApp(t)
	ta.addUser("alice", alicePassword, "orders:read")
	ta.registerClient(auth.NewClient{ID: "app", Secret: appSecret, Scopes: []string{"reports"}})

	m := get(ta, "auth.example.com:8443")
	for k, want := range map[string]string{
		"issuer":                                     "http://auth.example.com:8443",
		"token_endpoint":                             "http://auth.example.com:8443/token",
		"revocation_endpoint":                        "http://auth.example.com:8443/revoke",
		"grant_types_supported":                      "[password refresh_token]",
		"token_endpoint_auth_methods_supported":      "[client_secret_basic client_secret_post none]",
		"revocation_endpoint_auth_methods_supported": "[client_secret_basic client_secret_post none]",
		"scopes_supported":                           "[orders:read reports users:read users:write]",
		"response_types_supported":                   "[]",
	} {
		if got := fmtJSON(m[k]); got != want {
			t.Errorf("%s = %s; want %s", k, got, want)
		}
	}

	public := newTestApp(t, func(c *config) { c.http.PublicURL = "https://auth.example.com/" })
	if m := get(public, "internal:8080"); m["issuer"] != "https://auth.example.com" || m["token_endpoint"] != "https://auth.example.com/token" {
		t.Errorf("with PUBLIC_URL: %v", m)
	}
}

// TestMetadataForgedHostIsNotCachedForOthers sends what a cache poisoner
// sends: the metadata request with a forged Host. Without PUBLIC_URL the
// document names that host, so a shared cache must not keep it for others
// (private, Vary: Host); with PUBLIC_URL the Host changes nothing, and the
// document may be cached publicly.
func TestMetadataForgedHostIsNotCachedForOthers(t *testing.T) {
	fetch := func(ta *testApp, host string) (http.Header, string, map[string]any) {
		t.Helper()
		req := mustRequest(t, http.MethodGet, ta.URL+"/.well-known/oauth-authorization-server")
		req.Host = host
		resp, body := ta.do(req)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("metadata: %d %s", resp.StatusCode, body)
		}
		return resp.Header, string(body), m
	}

	t.Run("from the request", func(t *testing.T) {
		ta := newTestApp(t)
		h, _, m := fetch(ta, "evil.example")
		if m["token_endpoint"] != "http://evil.example/token" {
			t.Fatalf("token_endpoint = %v; the document should name the request's host", m["token_endpoint"])
		}
		if got := h.Get("Cache-Control"); got != "private, max-age=60" {
			t.Errorf("Cache-Control = %q; want %q", got, "private, max-age=60")
		}
		var vary []string
		for _, v := range h.Values("Vary") {
			for part := range strings.SplitSeq(v, ",") {
				vary = append(vary, strings.TrimSpace(part))
			}
		}
		if !slices.Contains(vary, "Host") || !slices.Contains(vary, "Origin") {
			t.Errorf("Vary = %q; want Host beside CORS's Origin", vary)
		}
	})

	t.Run("PUBLIC_URL", func(t *testing.T) {
		ta := newTestApp(t, func(c *config) { c.http.PublicURL = "https://auth.example.com" })
		h, honest, _ := fetch(ta, "auth.example.com")
		forgedHeader, forged, m := fetch(ta, "evil.example")
		if forged != honest || strings.Contains(forged, "evil") || m["token_endpoint"] != "https://auth.example.com/token" {
			t.Errorf("forged Host changed the document:\n%s\nwant\n%s", forged, honest)
		}
		for _, h := range []http.Header{h, forgedHeader} {
			if got := h.Get("Cache-Control"); got != "public, max-age=60" {
				t.Errorf("Cache-Control = %q; want %q", got, "public, max-age=60")
			}
		}
	})
}

// fmtJSON prints a decoded JSON value compactly: strings bare, arrays as
// [a b].
func fmtJSON(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fmtJSON(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
