// Package httpapi is authql's HTTP edge: the routes, the OAuth2 token
// endpoint (RFC 6749), the bearer middleware (RFC 6750) and the middleware
// every request passes through. It receives the GraphQL handler as an
// http.Handler and never imports the graph package.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
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
	// token, in GraphQL's format; also that of /query/'s 404.
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
	// TrustedProxies are the peers whose ClientIPHeader is believed; nil
	// means Loopback.
	TrustedProxies []netip.Prefix
	// MaxQueryBytes bounds a /query request body.
	MaxQueryBytes int64
	// Playground serves GraphiQL at GET /.
	Playground bool
	Logger     *slog.Logger
	// Metrics is told of every request once it is answered; nil means no
	// metrics.
	Metrics Observer
}

// Observer is told of every request once it is answered (authql's metrics
// package counts them). route is the ServeMux pattern that matched, such as
// "POST /token", or RouteUnmatched or RoutePreflight: never the path, which
// the client chooses. Its methods must be cheap and safe for concurrent use.
type Observer interface {
	ObserveRequest(route string, status int, took time.Duration)
}

// The routes of requests that no pattern of the route table answered.
const (
	// RouteUnmatched: ServeMux's own 404, 405 or redirect.
	RouteUnmatched = "unmatched"
	// RoutePreflight: a CORS preflight, answered before the routes.
	RoutePreflight = "preflight"
)

// NewHandler returns the whole HTTP surface of authql. Go's ServeMux
// answers other methods on these paths with 405 and an Allow header; /token
// and /revoke do so themselves, to add their cache headers.
func NewHandler(o Options) (http.Handler, error) {
	withUser := bearer(o.Service, o.Logger, o.RefuseBearer)
	graphql := noStoreAll(withUser(http.MaxBytesHandler(o.GraphQL, o.MaxQueryBytes)))

	mux := http.NewServeMux()
	// handle routes pattern to h, which records the pattern for the
	// request's metrics.
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, recordRoute(h)) }
	if o.Playground {
		page, assets, err := playgroundHandlers()
		if err != nil {
			return nil, err
		}
		handle("GET /{$}", page)
		handle("GET "+playgroundPath, assets)
	}
	handle("GET /query", graphql)
	handle("POST /query", graphql)
	handle("POST /token", tokenHandler(o.Service, o.Logger))
	handle("/token", http.HandlerFunc(postOnly))
	handle("POST /revoke", revokeHandler(o.Service, o.Logger))
	handle("/revoke", http.HandlerFunc(postOnly))
	handle("POST /introspect", introspectHandler(o.Service, o.Logger))
	handle("/introspect", http.HandlerFunc(postOnly))
	handle("GET /.well-known/jwks.json", jwksHandler(o.Service, o.Logger))
	handle("GET /.well-known/oauth-authorization-server", metadataHandler(o.Service, o.PublicURL, o.Logger))
	handle("GET /healthz", health(o.Ping))

	// Each path with a trailing slash, as a client or a proxy's
	// configuration may add by mistake: 404 in the endpoint's own error
	// format, naming the path meant, where ServeMux's plain text would fail
	// to parse in an OAuth2 or GraphQL client and hide the cause. Only for
	// the methods the endpoint takes (/token and /revoke take all): with a
	// pattern for every method, ServeMux would redirect PUT /query, which
	// has no route, to /query/, instead of answering 405.
	queryNotFound := didYouMean("/query", graphqlNotFound(o.RefuseBearer))
	handle("GET /query/{$}", queryNotFound)
	handle("POST /query/{$}", queryNotFound)
	handle("/token/{$}", didYouMean("/token", oauthNotFound))
	handle("/revoke/{$}", didYouMean("/revoke", oauthNotFound))
	handle("/introspect/{$}", didYouMean("/introspect", oauthNotFound))
	handle("GET /.well-known/jwks.json/{$}", didYouMean("/.well-known/jwks.json", oauthNotFound))
	handle("GET /.well-known/oauth-authorization-server/{$}", didYouMean("/.well-known/oauth-authorization-server", oauthNotFound))
	handle("GET /healthz/{$}", didYouMean("/healthz", healthNotFound))

	var h http.Handler = mux
	h = cors.New(cors.Options{
		AllowedOrigins: o.CORSOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: corsAllowedHeaders,
		ExposedHeaders: corsExposedHeaders,
		MaxAge:         600,
	}).Handler(h)
	h = securityHeaders(h)
	trusted := o.TrustedProxies
	if trusted == nil {
		trusted = Loopback
	}
	h = logRequests(o.Logger, Addressing{Header: o.ClientIPHeader, TrustedProxies: trusted}, o.Metrics, h)
	return h, nil
}

// recordRoute notes the pattern that ServeMux matched (r.Pattern, which it
// sets on the request it hands to the route's handler) in the request's
// info, where logRequests, outside the mux, finds it once the request is
// answered.
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(r.Context()); info != nil {
			info.route = r.Pattern
		}
		next.ServeHTTP(w, r)
	})
}

// corsAllowedHeaders are the request headers a browser may send cross-origin
// (the preflight's Access-Control-Request-Headers): the bearer token and the
// JSON body's type, and what GraphQL clients add on their own: Apollo
// Client's apollographql-client-name and -version (with its clientAwareness
// option), the X-Requested-With of XMLHttpRequest-era libraries, and
// Accept, which a browser preflights when its value is not CORS-safelisted
// (over 128 bytes, or with a byte the Fetch standard calls unsafe).
var corsAllowedHeaders = []string{
	"Authorization", "Content-Type", "Accept", "X-Requested-With",
	"Apollographql-Client-Name", "Apollographql-Client-Version",
}

// corsExposedHeaders are the response headers browser code may read beyond
// the CORS-safelisted ones: the bearer challenge (RFC 6750 section 3), which
// tells an expired token from a malformed one; the request id that names an
// internal error in the log; and how long to wait after a 429 or 503.
var corsExposedHeaders = []string{"WWW-Authenticate", "X-Request-Id", "Retry-After"}

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

// didYouMean answers a path that names no endpoint but one close to meant:
// 404, written by notFound in that endpoint's format, with a message that
// names meant.
func didYouMean(meant string, notFound func(w http.ResponseWriter, r *http.Request, msg string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notFound(w, r, "no endpoint at "+r.URL.Path+"; did you mean "+meant+"?")
	})
}

// oauthNotFound writes a 404 as the OAuth2 endpoints write their errors
// (RFC 6749 section 5.2): invalid_request, with their cache headers.
func oauthNotFound(w http.ResponseWriter, r *http.Request, msg string) {
	noStore(w.Header())
	writeJSON(w, http.StatusNotFound, "application/json", oauthErrorBody{
		Error:       string(auth.CodeInvalidRequest),
		Description: safeDescription(msg),
	})
}

// graphqlNotFound writes a 404 in GraphQL's format, by refuse: the code of
// invalid_request (BAD_USER_INPUT), as application/graphql-response+json
// when the request accepts it.
func graphqlNotFound(refuse RefuseFunc) func(w http.ResponseWriter, r *http.Request, msg string) {
	return func(w http.ResponseWriter, r *http.Request, msg string) {
		w.Header().Set("Cache-Control", "no-store")
		refuse(w, r, http.StatusNotFound, auth.Errorf(auth.CodeInvalidRequest, "%s", msg), RequestID(r.Context()))
	}
}

// healthNotFound writes a 404 in /healthz's format.
func healthNotFound(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusNotFound, "application/json", map[string]string{"status": "not_found", "error": msg})
}
