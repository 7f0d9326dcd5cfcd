package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/99designs/gqlgen/graphql/playground"
)

// playgroundAssets is where the playground page loads GraphiQL and React
// from, pinned by version and by subresource integrity.
const playgroundAssets = "https://cdn.jsdelivr.net"

// playgroundHandler serves the GraphiQL page for /query. The page is the
// same for every request, so it is rendered once, and its
// Content-Security-Policy allows exactly its inline script, by hash.
func playgroundHandler() (http.Handler, error) {
	var page pageRecorder
	req, err := http.NewRequest(http.MethodGet, "/", nil)
	if err != nil {
		return nil, err
	}
	playground.Handler("authql", "/query")(&page, req)
	csp := playgroundCSP(page.body.Bytes())
	body := page.body.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		w.Write(body)
	}), nil
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// playgroundCSP allows the page's assets, its inline scripts by SHA-256, and
// requests to this server only.
func playgroundCSP(page []byte) string {
	scripts := []string{playgroundAssets}
	for _, m := range inlineScript.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		scripts = append(scripts, fmt.Sprintf("'sha256-%s'", base64.StdEncoding.EncodeToString(sum[:])))
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + strings.Join(scripts, " "),
		"style-src " + playgroundAssets + " 'unsafe-inline'",
		"font-src " + playgroundAssets + " data:",
		"img-src 'self' data: " + playgroundAssets,
		"connect-src 'self'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'none'",
	}, "; ")
}

// pageRecorder is the http.ResponseWriter a page is rendered into once.
type pageRecorder struct {
	header http.Header
	body   bytes.Buffer
}

func (p *pageRecorder) Header() http.Header {
	if p.header == nil {
		p.header = http.Header{}
	}
	return p.header
}

func (p *pageRecorder) Write(b []byte) (int, error) { return p.body.Write(b) }

func (p *pageRecorder) WriteHeader(int) {}
