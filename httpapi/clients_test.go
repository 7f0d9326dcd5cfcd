package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"authql/auth"
	"authql/auth/authtest"
)

// TestClientAuthentication is RFC 6749 section 2.3.1 against registered
// clients.
func TestClientAuthentication(t *testing.T) {
	s := newServer(t)
	s.addUser("alice", alicePassword, "users:read", "users:write")
	s.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	s.registerClient(auth.NewClient{ID: "id:with spaces&more", Secret: appSecret})
	s.registerClient(auth.NewClient{ID: "spa", GrantTypes: []string{auth.GrantPassword}})
	s.registerClient(auth.NewClient{ID: "reader", Secret: appSecret, Scopes: []string{"users:read"}})
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
		{name: "Basic", form: password(), auth: authtest.BasicAuth("app", appSecret), status: 200, wantScope: "users:read users:write"},
		{name: "body", form: password("client_id", "app", "client_secret", appSecret), status: 200},
		{name: "Basic with encoded characters in id and secret", form: password(), auth: authtest.BasicAuth("id:with spaces&more", appSecret), status: 200},
		{name: "Basic without form-encoding", form: password(), auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("app:"+appSecret)), status: 401, code: "invalid_client"},
		{name: "both methods", form: password("client_secret", appSecret), auth: authtest.BasicAuth("app", appSecret), status: 400, code: "invalid_request"},
		{name: "wrong secret in Basic", form: password(), auth: authtest.BasicAuth("app", "wrong secret"), status: 401, code: "invalid_client"},
		{name: "wrong secret in body", form: password("client_id", "app", "client_secret", "wrong secret"), status: 401, code: "invalid_client"},
		{name: "confidential client without its secret", form: password("client_id", "app"), status: 401, code: "invalid_client"},
		{name: "unknown client with a secret", form: password("client_id", "nope", "client_secret", appSecret), status: 401, code: "invalid_client"},
		{name: "unknown client in Basic", form: password(), auth: authtest.BasicAuth("nope", appSecret), status: 401, code: "invalid_client"},
		{name: "unregistered public client_id", form: password("client_id", "some-cli"), status: 200},
		{name: "public client", form: password("client_id", "spa"), status: 200},
		{name: "public client presenting a secret", form: password("client_id", "spa", "client_secret", appSecret), status: 401, code: "invalid_client"},
		{name: "grant the client may not use", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"spa"}}, status: 400, code: "unauthorized_client"},
		{name: "client scopes narrow the token", form: password(), auth: authtest.BasicAuth("reader", appSecret), status: 200, wantScope: "users:read"},
		{name: "scope beyond the client", form: password("scope", "users:write"), auth: authtest.BasicAuth("reader", appSecret), status: 400, code: "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.postOAuth("/token", tc.form, tc.auth)
			authtest.WantOAuth(t, resp, body, tc.status, tc.code)
			if tc.wantScope != "" {
				var tok authtest.Tokens
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
	s := newServer(t)
	s.addUser("alice", alicePassword)
	s.registerClient(auth.NewClient{ID: "app", Secret: appSecret})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.Client())
	conf := &oauth2.Config{ClientID: "app", ClientSecret: appSecret, Endpoint: oauth2.Endpoint{TokenURL: s.URL + "/token"}}
	tok, err := conf.PasswordCredentialsToken(ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if got := claimsOf(t, tok.AccessToken)["client_id"]; got != "app" {
		t.Errorf("client_id claim = %v; want app", got)
	}
	if _, a := s.query("Bearer " + tok.AccessToken); a.Identity == nil || a.Identity.ClientID != "app" {
		t.Errorf("identity of the access token = %+v (refusal %+v); want client app", a.Identity, a.Refused)
	}
	for name, auth := range map[string]string{"first-party": "", "another client": authtest.BasicAuth("other", "")} {
		resp, body := s.postOAuth("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, auth)
		t.Run(name, func(t *testing.T) { authtest.WantOAuth(t, resp, body, 400, "invalid_grant") })
	}
	resp, body := s.postOAuth("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, authtest.BasicAuth("app", appSecret))
	authtest.WantOAuth(t, resp, body, 200, "")
}
