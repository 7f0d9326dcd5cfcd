package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"authql/auth"
)

// TestMetadata is RFC 8414 section 3.
func TestMetadata(t *testing.T) {
	get := func(s *server, host string) map[string]any {
		t.Helper()
		req := s.newRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil)
		if host != "" {
			req.Host = host
		}
		resp, body := s.do(req)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("metadata: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	s := newServer(t)
	s.addUser("alice", alicePassword, "orders:read")
	s.registerClient(auth.NewClient{ID: "app", Secret: appSecret, Scopes: []string{"reports"}})

	m := get(s, "auth.example.com:8443")
	for k, want := range map[string]string{
		"issuer":                                        "http://auth.example.com:8443",
		"token_endpoint":                                "http://auth.example.com:8443/token",
		"revocation_endpoint":                           "http://auth.example.com:8443/revoke",
		"grant_types_supported":                         "[password refresh_token]",
		"token_endpoint_auth_methods_supported":         "[client_secret_basic client_secret_post none]",
		"revocation_endpoint_auth_methods_supported":    "[client_secret_basic client_secret_post none]",
		"introspection_endpoint":                        "http://auth.example.com:8443/introspect",
		"introspection_endpoint_auth_methods_supported": "[client_secret_basic client_secret_post]",
		"jwks_uri":                                      "http://auth.example.com:8443/.well-known/jwks.json",
		"scopes_supported":                              "[orders:read reports users:read users:write]",
		"response_types_supported":                      "[]",
	} {
		if got := fmtJSON(m[k]); got != want {
			t.Errorf("%s = %s; want %s", k, got, want)
		}
	}

	public := newServer(t, func(c config) { c.http.PublicURL = "https://auth.example.com/" })
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
	fetch := func(s *server, host string) (http.Header, string, map[string]any) {
		t.Helper()
		req := s.newRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil)
		req.Host = host
		resp, body := s.do(req)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("metadata: %d %s", resp.StatusCode, body)
		}
		return resp.Header, string(body), m
	}

	t.Run("from the request", func(t *testing.T) {
		s := newServer(t)
		h, _, m := fetch(s, "evil.example")
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
		s := newServer(t, func(c config) { c.http.PublicURL = "https://auth.example.com" })
		h, honest, _ := fetch(s, "auth.example.com")
		forgedHeader, forged, m := fetch(s, "evil.example")
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
