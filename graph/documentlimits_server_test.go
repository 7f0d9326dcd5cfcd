package graph_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"authql/graph"
)

// TestQueryDocumentLimits: through the whole server, with its configured
// limits, documents that gqlparser's validation would spend seconds on are
// refused at once: 121 KB of { __typename __typename … } took 13 s of CPU
// to validate before it got COMPLEXITY_LIMIT_EXCEEDED, and is now refused
// in about 2 ms (the bound below, 1 s, leaves room for -race and a loaded
// machine); a repeated field within the complexity limit gets
// SELECTION_LIMIT_EXCEEDED. Both are request errors: 200 under
// application/json, 400 without data under application/graphql-response+json.
func TestQueryDocumentLimits(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name, query, code string
	}{
		{"121 KB of one field", "{ " + strings.Repeat("__typename ", 11000) + "}", "GRAPHQL_PARSE_FAILED"}, // past the token limit
		{"33 KB of one field", "{ " + strings.Repeat("__typename ", 3000) + "}", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"one field repeated within the complexity limit", "{ " + strings.Repeat("__typename ", 200) + "}", "SELECTION_LIMIT_EXCEEDED"},
	} {
		for accept, wantStatus := range map[string]int{"application/json": 200, "application/graphql-response+json": 400} {
			t.Run(tc.name+", "+accept, func(t *testing.T) {
				body, _ := json.Marshal(map[string]string{"query": tc.query})
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", accept)
				start := time.Now()
				resp, raw := ts.do(req)
				if took := time.Since(start); took > time.Second {
					t.Errorf("answered in %v", took)
				}
				var got struct {
					Errors []struct {
						Extensions struct{ Code string } `json:"extensions"`
					} `json:"errors"`
				}
				if err := json.Unmarshal(raw, &got); err != nil || len(got.Errors) == 0 {
					t.Fatalf("%d %.200s", resp.StatusCode, raw)
				}
				if resp.StatusCode != wantStatus || got.Errors[0].Extensions.Code != tc.code {
					t.Errorf("%d %s; want %d %s", resp.StatusCode, got.Errors[0].Extensions.Code, wantStatus, tc.code)
				}
			})
		}
	}
	if _, resp := ts.graphql("", graph.GraphiQLIntrospection, nil); len(resp.Errors) != 0 {
		t.Errorf("GraphiQL's introspection query: %+v", resp.Errors)
	}
}
