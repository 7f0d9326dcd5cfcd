package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"regexp"
	"strings"

	"github.com/99designs/gqlgen/graphql/playground"
)

// playgroundFiles are GraphiQL and React, pinned by version and served from
// the binary, so that the playground works offline, behind firewalls and
// under a strict Content-Security-Policy. See playground/LICENSES.txt.
//
//go:embed playground/*.js playground/*.css
var playgroundFiles embed.FS

// playgroundPath is where the assets are served; their names carry their
// versions, so they may be cached for good.
const playgroundPath = "/playground/"

// Pinned playground assets.
const (
	graphiqlJS  = "graphiql-4.1.2.min.js"
	graphiqlCSS = "graphiql-4.1.2.min.css"
	reactJS     = "react-18.2.0.production.min.js"
	reactDOMJS  = "react-dom-18.2.0.production.min.js"
)

// playgroundHandlers return the GraphiQL page for /query and the handler of
// its assets. The page is the same for every request, so it is rendered
// once, with header persistence off (forgetHeaders, whose error it
// returns); its Content-Security-Policy allows scripts from this server and
// the page's one inline script, by hash.
func playgroundHandlers() (page, assets http.Handler, err error) {
	dir, err := fs.Sub(playgroundFiles, "playground")
	if err != nil {
		return nil, nil, err
	}
	sri := map[string]string{}
	for _, name := range []string{graphiqlJS, graphiqlCSS, reactJS, reactDOMJS} {
		b, err := fs.ReadFile(dir, name)
		if err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(b)
		sri[name] = "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
	}
	render := playground.Handler("authql", "/query",
		playground.WithGraphiqlVersion(playgroundPath+graphiqlJS, playgroundPath+graphiqlCSS, sri[graphiqlJS], sri[graphiqlCSS]),
		playground.WithGraphiqlReactVersion(playgroundPath+reactJS, playgroundPath+reactDOMJS, sri[reactJS], sri[reactDOMJS]),
	)
	var rec pageRecorder
	req, err := http.NewRequest(http.MethodGet, "/", nil)
	if err != nil {
		return nil, nil, err
	}
	render(&rec, req)
	body, err := forgetHeaders(rec.body.Bytes())
	if err != nil {
		return nil, nil, err
	}
	csp := playgroundCSP(body) // over the final page, so the hash matches

	page = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-cache")
		w.Write(body)
	})
	files := http.StripPrefix(playgroundPath, http.FileServerFS(dir))
	assets = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
	return page, assets, nil
}

// headerEdits keep the bearer token a user pastes into the playground's
// headers editor out of localStorage, where it would outlive the tab and be
// readable by any script that ever runs on this origin. gqlgen's GraphiQL
// page (v0.17.95) has no option for either:
//   - it tells GraphiQL to persist the headers editor; with that off,
//     GraphiQL keeps headers in memory, hides its "persist headers" setting
//     and, on load, clears headers an older page stored;
//   - GraphiQL 4.1.2 records every run operation's headers in its history
//     (graphiql:queries, graphiql:favorites) whatever that setting says, so
//     the page's storage drops them from those entries as it writes them.
//
// Each old text must appear in the page exactly once.
var headerEdits = []struct{ old, new string }{
	{"shouldPersistHeaders: true,", "shouldPersistHeaders: false,"},
	{"localStorage.setItem(prefixedKey, value);",
		"localStorage.setItem(prefixedKey, /^graphiql:(queries|favorites)$/.test(key) ? " +
			"JSON.stringify(JSON.parse(value), (k, v) => k === 'headers' ? undefined : v) : value);"},
}

// forgetHeaders returns page with headerEdits applied. It returns an error
// when the page differs from the one they were written for (an old text not
// found once, or the persistence setting named more than once), so that a
// gqlgen upgrade stops the server at start instead of silently storing
// tokens again.
func forgetHeaders(page []byte) ([]byte, error) {
	if n := bytes.Count(page, []byte("shouldPersistHeaders")); n != 1 {
		return nil, fmt.Errorf("playground: gqlgen's GraphiQL page names shouldPersistHeaders %d times, not once; "+
			"update httpapi/playground.go so that it keeps bearer tokens out of localStorage, or set PLAYGROUND=false", n)
	}
	for _, e := range headerEdits {
		if n := bytes.Count(page, []byte(e.old)); n != 1 {
			return nil, fmt.Errorf("playground: gqlgen's GraphiQL page contains %q %d times, not once; "+
				"update httpapi/playground.go so that it keeps bearer tokens out of localStorage, or set PLAYGROUND=false", e.old, n)
		}
		page = bytes.Replace(page, []byte(e.old), []byte(e.new), 1)
	}
	return page, nil
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// playgroundCSP allows this server's scripts and styles, the page's inline
// scripts by SHA-256, inline styles (GraphiQL's components insert style
// elements), data: fonts and images, and requests to this server only.
func playgroundCSP(page []byte) string {
	scripts := []string{"'self'"}
	for _, m := range inlineScript.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		scripts = append(scripts, fmt.Sprintf("'sha256-%s'", base64.StdEncoding.EncodeToString(sum[:])))
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + strings.Join(scripts, " "),
		"style-src 'self' 'unsafe-inline'",
		"font-src 'self' data:",
		"img-src 'self' data:",
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
