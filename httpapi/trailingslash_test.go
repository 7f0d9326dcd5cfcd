package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestTrailingSlash sends each endpoint's path with a slash added, and
// checks the 404 comes in the endpoint's own error format and names the
// path meant; and that the paths without the slash answer as before (no
// redirect to the slashed path for a method they do not take).
func TestTrailingSlash(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		method, path, accept string
		status               int
		contentType          string
		// body checks the decoded body.
		body func(t *testing.T, body map[string]any)
		// pragma is whether the answer carries the OAuth2 endpoints'
		// Pragma: no-cache beside Cache-Control: no-store.
		pragma bool
	}{
		{method: "POST", path: "/token/", status: 404, contentType: "application/json", body: oauthHint("/token"), pragma: true},
		{method: "GET", path: "/token/", status: 404, contentType: "application/json", body: oauthHint("/token"), pragma: true},
		{method: "POST", path: "/revoke/", status: 404, contentType: "application/json", body: oauthHint("/revoke"), pragma: true},
		{method: "POST", path: "/introspect/", status: 404, contentType: "application/json", body: oauthHint("/introspect"), pragma: true},
		{method: "GET", path: "/.well-known/jwks.json/", status: 404, contentType: "application/json", body: oauthHint("/.well-known/jwks.json"), pragma: true},
		{method: "GET", path: "/.well-known/oauth-authorization-server/", status: 404, contentType: "application/json",
			body: oauthHint("/.well-known/oauth-authorization-server"), pragma: true},
		{method: "GET", path: "/healthz/", status: 404, contentType: "application/json", body: func(t *testing.T, body map[string]any) {
			if body["status"] != "not_found" || !strings.HasSuffix(body["error"].(string), "did you mean /healthz?") {
				t.Errorf("body = %v; want status not_found and a hint", body)
			}
		}},

		// The endpoints themselves, on methods they do not take: 405, not
		// a redirect to the slashed path.
		{method: "PUT", path: "/query", status: 405},
		{method: "POST", path: "/healthz", status: 405},
		{method: "POST", path: "/.well-known/oauth-authorization-server", status: 405},
		{method: "GET", path: "/token", status: 405, contentType: "application/json", pragma: true},
		{method: "GET", path: "/healthz", status: 200, contentType: "application/json"},
	} {
		t.Run(strings.TrimSpace(tc.method+" "+tc.path+" "+tc.accept), func(t *testing.T) {
			req := s.newRequest(tc.method, tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			client := *s.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d (Location %q); want %d", resp.StatusCode, resp.Header.Get("Location"), tc.status)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q; want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.pragma && (resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache") {
				t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache", resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
			}
			if tc.status == 404 && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", resp.Header.Get("Cache-Control"))
			}
			if tc.body != nil {
				var body map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatalf("body is not JSON: %v", err)
				}
				tc.body(t, body)
			}
		})
	}
}

// oauthHint checks an RFC 6749 error body whose description names meant.
func oauthHint(meant string) func(*testing.T, map[string]any) {
	return func(t *testing.T, body map[string]any) {
		t.Helper()
		desc, _ := body["error_description"].(string)
		if body["error"] != "invalid_request" || !strings.HasSuffix(desc, "did you mean "+meant+"?") {
			t.Errorf("body = %v; want invalid_request and a description ending in: did you mean %s?", body, meant)
		}
	}
}
