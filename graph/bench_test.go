package graph_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkQuery compares an authenticated { me { id username } } with an
// anonymous { __typename } through the whole handler, in process; an
// authenticated { __typename } between them splits the difference into the
// bearer check and resolving me. The load
// benchmark (go run ./loadbench) measures the real binary over loopback.
func BenchmarkQuery(b *testing.B) {
	ts := newTestServer(b)
	ts.addUser("alice", alicePassword)
	token := ts.login("alice", alicePassword).AccessToken
	for _, bc := range []struct{ name, token, query string }{
		{"anonymous", "", `{"query":"{ __typename }"}`},
		{"authenticated", token, `{"query":"{ __typename }"}`},
		{"me", token, `{"query":"{ me { id username } }"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := ts.Client()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, ts.URL+"/query", strings.NewReader(bc.query))
					req.Header.Set("Content-Type", "application/json")
					if bc.token != "" {
						req.Header.Set("Authorization", "Bearer "+bc.token)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}
