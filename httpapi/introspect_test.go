package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

// TestIntrospect is RFC 7662 sections 2.1 to 2.3: a registered confidential
// client asks whether a token is live; live access and refresh tokens
// answer their claims, everything else exactly {"active":false}.
func TestIntrospect(t *testing.T) {
	s := newServer(t, func(c config) { c.auth.Audience = "orders-api" })
	alice := s.addUser("alice", alicePassword, "users:read", "orders:read")
	s.registerClient(auth.NewClient{ID: "orders-api", Secret: appSecret})
	s.registerClient(auth.NewClient{ID: "spa"})
	resourceServer := authtest.BasicAuth("orders-api", appSecret)
	introspect := func(token, hint string) (*http.Response, []byte) {
		t.Helper()
		form := url.Values{"token": {token}}
		if hint != "" {
			form.Set("token_type_hint", hint)
		}
		return s.postOAuth("/introspect", form, resourceServer)
	}
	inactive := func(name string, token, hint string) {
		t.Helper()
		resp, body := introspect(token, hint)
		authtest.WantOAuth(t, resp, body, http.StatusOK, "")
		if got := strings.TrimSpace(string(body)); got != `{"active":false}` {
			t.Errorf("%s: %s; want exactly {\"active\":false}", name, got)
		}
	}

	// A token of the public client spa: any client's tokens may be asked
	// about, since resource servers check the tokens of the apps that call
	// them.
	resp, body := s.postOAuth("/token", url.Values{"grant_type": {"password"}, "username": {"alice"},
		"password": {alicePassword}, "scope": {"orders:read"}, "client_id": {"spa"}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var tok authtest.Tokens
	json.Unmarshal(body, &tok)
	now := s.clock.Now()

	for _, hint := range []string{"", "access_token", "refresh_token"} {
		resp, body = introspect(tok.AccessToken, hint)
		authtest.WantOAuth(t, resp, body, http.StatusOK, "")
		var got map[string]any
		json.Unmarshal(body, &got)
		claims := claimsOf(t, tok.AccessToken)
		want := map[string]any{
			"active": true, "scope": "orders:read", "client_id": "spa", "username": "alice",
			"token_type": "Bearer", "sub": alice.ID, "aud": "orders-api", "iss": "authql-test",
			"jti": claims["jti"], "sid": claims["sid"],
			"exp": float64(now.Add(15 * time.Minute).Unix()), "iat": float64(now.Unix()),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("access token, hint %q:\n got %v\nwant %v", hint, got, want)
		}
	}

	resp, body = introspect(tok.RefreshToken, "")
	var refresh map[string]any
	json.Unmarshal(body, &refresh)
	if refresh["active"] != true || refresh["token_type"] != "refresh_token" || refresh["client_id"] != "spa" ||
		refresh["sub"] != alice.ID || refresh["exp"] != float64(now.Add(24*time.Hour).Unix()) || refresh["jti"] != nil {
		t.Errorf("refresh token: %d %v", resp.StatusCode, refresh)
	}

	t.Run("inactive", func(t *testing.T) {
		inactive("garbage", "not a token", "")
		inactive("a tampered access token", tok.AccessToken[:len(tok.AccessToken)-2]+"xx", "access_token")
		inactive("a refresh token of the right shape", strings.Repeat("A", len(tok.RefreshToken)), "refresh_token")

		// Taking a scope away narrows the answer at once.
		if _, err := s.svc.SetUserScopes(t.Context(), auth.Operator, alice.ID, []string{"users:read"}); err != nil {
			t.Fatal(err)
		}
		resp, body := introspect(tok.AccessToken, "")
		if !strings.Contains(string(body), `"active":true`) || strings.Contains(string(body), "orders:read") {
			t.Errorf("after losing orders:read: %d %s", resp.StatusCode, body)
		}

		// A rotated refresh token is not live, even within the grace window.
		resp, body = s.postOAuth("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {"spa"}}, "")
		var next authtest.Tokens
		if json.Unmarshal(body, &next); resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d %s", resp.StatusCode, body)
		}
		inactive("a rotated refresh token", tok.RefreshToken, "")

		s.clock.Advance(16 * time.Minute)
		inactive("an expired access token", next.AccessToken, "")
		if resp, body := introspect(next.RefreshToken, ""); !strings.Contains(string(body), `"active":true`) {
			t.Errorf("the current refresh token after the access token expired: %d %s", resp.StatusCode, body)
		}

		id, err := s.svc.Authenticate(t.Context(), s.login("alice", alicePassword).AccessToken, auth.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.svc.Logout(t.Context(), id, true); err != nil {
			t.Fatal(err)
		}
		inactive("a refresh token of a revoked session", next.RefreshToken, "")
	})

	t.Run("client authentication", func(t *testing.T) {
		live := s.login("alice", alicePassword)
		form := url.Values{"token": {live.AccessToken}}
		for name, authorization := range map[string]string{
			"none":                "",
			"a public client":     "",
			"a wrong secret":      authtest.BasicAuth("orders-api", "not the secret"),
			"an unregistered id":  authtest.BasicAuth("nobody", appSecret),
			"a malformed request": "Bearer " + live.AccessToken,
		} {
			f := form
			if name == "a public client" {
				f = url.Values{"token": {live.AccessToken}, "client_id": {"spa"}}
			}
			resp, body := s.postOAuth("/introspect", f, authorization)
			authtest.WantOAuth(t, resp, body, http.StatusUnauthorized, "invalid_client")
			if strings.Contains(string(body), "active") {
				t.Errorf("%s: the answer tells about the token: %s", name, body)
			}
		}
		resp, body := s.postOAuth("/introspect", url.Values{}, resourceServer)
		authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_request")
		// A public client learns nothing, not even what it forgot to send.
		resp, body = s.postOAuth("/introspect", url.Values{"client_id": {"spa"}}, "")
		authtest.WantOAuth(t, resp, body, http.StatusUnauthorized, "invalid_client")
		req := s.newRequest(http.MethodGet, "/introspect", nil)
		resp, body = s.do(req)
		authtest.WantOAuth(t, resp, body, http.StatusMethodNotAllowed, "invalid_request")
	})
}

// TestIntrospectIsThrottledLikeClientAuthentication: wrong secrets at
// /introspect count against the client id, as at /token.
func TestIntrospectIsThrottledLikeClientAuthentication(t *testing.T) {
	s := newServer(t, func(c config) { c.auth.ClientAuthLimit = auth.Limit{N: 2, Per: time.Minute} })
	s.registerClient(auth.NewClient{ID: "orders-api", Secret: appSecret})
	for range 2 {
		resp, body := s.postOAuth("/introspect", url.Values{"token": {"x"}}, authtest.BasicAuth("orders-api", "guess"))
		authtest.WantOAuth(t, resp, body, http.StatusUnauthorized, "invalid_client")
	}
	resp, body := s.postOAuth("/introspect", url.Values{"token": {"x"}}, authtest.BasicAuth("orders-api", appSecret))
	authtest.WantThrottled(t, resp, body)
}

// TestJWKSOfSymmetricKeyIsEmpty: an HS256 key is never published; the set
// is served, empty, where the metadata says.
func TestJWKSOfSymmetricKeyIsEmpty(t *testing.T) {
	s := newServer(t)
	resp, body := s.do(s.newRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/jwk-set+json" ||
		strings.TrimSpace(string(body)) != `{"keys":[]}` {
		t.Errorf("JWKS: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control = %q; want a max-age", cc)
	}
	if strings.Contains(string(body), string(s.secret)) {
		t.Error("the JWKS shows the secret")
	}
}

// TestUntrustedClientAddressHeaderIsSaid: a header from a peer that is not
// a trusted proxy is ignored, and the operator is told once.
func TestUntrustedClientAddressHeaderIsSaid(t *testing.T) {
	s := newServer(t, func(c config) {
		c.http.ClientIPHeader = "X-Real-IP"
		c.http.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	for range 3 {
		req := s.newRequest(http.MethodGet, "/healthz", nil)
		req.Header.Set("X-Real-IP", "203.0.113.9")
		s.do(req)
	}
	logs := s.logs.String()
	if n := strings.Count(logs, "ignoring the client address header of an untrusted peer"); n != 1 {
		t.Errorf("warned %d times; want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "client=127.0.0.1") || strings.Contains(logs, "client=203.0.113.9") {
		t.Errorf("the untrusted header counted:\n%s", logs)
	}
}
