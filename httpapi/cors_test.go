package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestCORSPreflight sends the preflights a browser sends before a GraphQL
// client's request: each header that Apollo Client and other GraphQL
// clients add must be allowed, alone and all together, as browsers list
// them (lower case, sorted, comma-separated).
func TestCORSPreflight(t *testing.T) {
	s := newServer(t)
	preflight := func(path, headers string) *http.Response {
		t.Helper()
		req := s.newRequest(http.MethodOptions, path, nil)
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", headers)
		resp, _ := s.do(req)
		return resp
	}
	for _, tc := range []struct {
		path, headers string
		allowed       bool
	}{
		{"/query", "content-type", true},
		{"/query", "authorization", true},
		{"/query", "accept", true},
		{"/query", "apollographql-client-name", true},
		{"/query", "apollographql-client-version", true},
		{"/query", "x-requested-with", true},
		{"/query", "accept,apollographql-client-name,apollographql-client-version,authorization,content-type,x-requested-with", true},
		{"/token", "authorization", true},
		{"/query", "x-unknown-header", false},
		{"/query", "authorization,x-unknown-header", false},
	} {
		t.Run(tc.path+" "+tc.headers, func(t *testing.T) {
			resp := preflight(tc.path, tc.headers)
			gotOrigin := resp.Header.Get("Access-Control-Allow-Origin")
			if !tc.allowed {
				if gotOrigin != "" {
					t.Errorf("Access-Control-Allow-Origin = %q; want none for a header not allowed", gotOrigin)
				}
				return
			}
			if resp.StatusCode != http.StatusNoContent || gotOrigin != "*" {
				t.Fatalf("preflight: %d, Access-Control-Allow-Origin %q; want 204 and *", resp.StatusCode, gotOrigin)
			}
			allowed := headerList(resp.Header.Values("Access-Control-Allow-Headers"))
			for h := range strings.SplitSeq(tc.headers, ",") {
				if !slices.Contains(allowed, h) {
					t.Errorf("Access-Control-Allow-Headers = %q; want %s in it", allowed, h)
				}
			}
		})
	}
}

// TestCORSExposedHeaders checks that browser code may read the headers it
// needs on cross-origin answers: the bearer challenge, the request id and
// Retry-After.
func TestCORSExposedHeaders(t *testing.T) {
	s := newServer(t)
	want := []string{"www-authenticate", "x-request-id", "retry-after"}

	refused := s.newRequest(http.MethodPost, "/query", http.NoBody)
	refused.Header.Set("Origin", "https://app.example.com")
	refused.Header.Set("Content-Type", "application/json")
	refused.Header.Set("Authorization", "Bearer not.a.token")

	token := s.newRequest(http.MethodPost, "/token", http.NoBody)
	token.Header.Set("Origin", "https://app.example.com")
	token.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	token.URL.RawQuery = url.Values{"grant_type": {"password"}}.Encode()

	for name, req := range map[string]*http.Request{"refused bearer at /query": refused, "error at /token": token} {
		t.Run(name, func(t *testing.T) {
			resp, body := s.do(req)
			if resp.StatusCode < 400 {
				t.Fatalf("status %d (%s); want an error", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q; want *", got)
			}
			exposed := headerList(resp.Header.Values("Access-Control-Expose-Headers"))
			for _, h := range want {
				if !slices.Contains(exposed, h) {
					t.Errorf("Access-Control-Expose-Headers = %q; want %s in it", exposed, h)
				}
			}
			if name == "refused bearer at /query" && (resp.Header.Get("WWW-Authenticate") == "" || resp.Header.Get("X-Request-Id") == "") {
				t.Errorf("headers = %v; want WWW-Authenticate and X-Request-Id to expose", resp.Header)
			}
		})
	}
}

// headerList splits comma-separated header values into lower-case names.
func headerList(values []string) []string {
	var names []string
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}
