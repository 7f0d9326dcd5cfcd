// Package httpapi is authql's HTTP edge: the routes, the OAuth2 token
// endpoint (RFC 6749), the bearer middleware (RFC 6750) and the middleware
// every request passes through. It receives the GraphQL handler as an
// http.Handler and never imports the graph package.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/rs/cors"

	"authql/auth"
)

// Options are what NewHandler wires together.
type Options struct {
	Service *auth.Service
	// GraphQL serves /query; it finds the bearer user in the context.
	GraphQL http.Handler
	// RefuseBearer writes the body of /query's answer to a refused bearer
	// token, in GraphQL's format.
	RefuseBearer RefuseFunc
	// Ping checks that the database answers, for /healthz.
	Ping func(context.Context) error
	// CORSOrigins are the browser origins allowed to call the API; "*"
	// allows any.
	CORSOrigins []string
	// PublicURL is the base URL of the server in the metadata document;
	// empty, it is derived from each request.
	PublicURL string
	// ClientIPHeader, when set, names the header in which a trusted proxy
	// gives the client's address (the last one in it counts).
	ClientIPHeader string
	// MaxQueryBytes bounds a /query request body.
	MaxQueryBytes int64
	// Playground serves GraphiQL at GET /.
	Playground bool
	Logger     *slog.Logger
}

// NewHandler returns the whole HTTP surface of authql. Go's ServeMux
// answers other methods on these paths with 405 and an Allow header; /token
// and /revoke do so themselves, to add their cache headers.
func NewHandler(o Options) (http.Handler, error) {
	withUser := bearer(o.Service, o.Logger, o.RefuseBearer)
	graphql := noStoreAll(withUser(http.MaxBytesHandler(o.GraphQL, o.MaxQueryBytes)))

	mux := http.NewServeMux()
	if o.Playground {
		page, assets, err := playgroundHandlers()
		if err != nil {
			return nil, err
		}
		mux.Handle("GET /{$}", page)
		mux.Handle("GET "+playgroundPath, assets)
	}
	mux.Handle("GET /query", graphql)
	mux.Handle("POST /query", graphql)
	mux.Handle("POST /token", tokenHandler(o.Service, o.Logger))
	mux.HandleFunc("/token", postOnly)
	mux.Handle("POST /revoke", revokeHandler(o.Service, o.Logger))
	mux.HandleFunc("/revoke", postOnly)
	mux.Handle("GET /.well-known/oauth-authorization-server", metadataHandler(o.Service, o.PublicURL, o.Logger))
	mux.Handle("GET /healthz", health(o.Ping))

	var h http.Handler = mux
	h = cors.New(cors.Options{
		AllowedOrigins: o.CORSOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type"},
		MaxAge:         600,
	}).Handler(h)
	h = securityHeaders(h)
	h = logRequests(o.Logger, o.ClientIPHeader, h)
	return h, nil
}

// noStoreAll marks every answer of next, whoever wrote it, as one no cache may
// keep (RFC 9111 section 5.2.2.5). /query answers are personal (me, a user's
// sessions) and may come from a GET, which browsers and shared caches store
// by URL: a shared cache could hand one user's answer to the next request
// for that URL, and a browser keeps it on disk after logout. Anonymous
// answers, errors and the bearer middleware's refusals are marked alike:
// whether an answer is personal depends on the Authorization header, which
// a cache keyed by URL does not see.
func noStoreAll(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// health answers 200 {"status":"ok"} when the database answers, else 503.
func health(ping func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Cache-Control", "no-store")
		if err := ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, "application/json", map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ok"})
	})
}
