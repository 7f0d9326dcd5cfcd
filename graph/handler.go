package graph

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"authql/auth"
	"authql/graph/generated"
)

// Options bound what one GraphQL request may ask for.
type Options struct {
	// Introspection allows __schema and __type queries.
	Introspection bool
	// MaxDepth bounds how deeply selections nest.
	MaxDepth int
	// MaxComplexity bounds the fields an operation may resolve, each field
	// counting 1 (gqlgen's complexity extension).
	MaxComplexity int
	// MaxAliases bounds the aliased fields of an operation.
	MaxAliases int
	// Origin tells where the request of a context came from; RequestID,
	// its id, which internal errors show. The HTTP edge knows both.
	Origin    func(context.Context) auth.Origin
	RequestID func(context.Context) string
}

// NewHandler returns the GraphQL-over-HTTP handler for /query: POST with
// JSON, and GET for queries only. It expects the bearer middleware in front.
// Parsed queries are cached within a fixed memory budget (queryCache);
// a query not in cache is refused before validation when it holds more
// selections than the limits let run (documentLimits).
func NewHandler(svc *auth.Service, logger *slog.Logger, o Options) http.Handler {
	return overHTTP(newServer(svc, logger, o))
}

// newServer is NewHandler's executor, before overHTTP adapts it.
func newServer(svc *auth.Service, logger *slog.Logger, o Options) *handler.Server {
	srv := handler.New(generated.NewExecutableSchema(generated.Config{
		Resolvers:  &Resolver{Service: svc, Logger: logger, Origin: o.Origin},
		Directives: generated.DirectiveRoot{Auth: authDirective},
	}))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	cache := newQueryCache(maxCachedQueryBytes, queryCacheBudget)
	srv.SetQueryCache(cache)
	limits := newDocumentLimits(o.MaxComplexity, cache)
	srv.SetParserTokenLimit(limits.maxTokens)
	srv.Use(limits)
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(queryLimits{maxDepth: o.MaxDepth, maxAliases: o.MaxAliases, introspection: o.Introspection})
	srv.Use(extension.FixedComplexityLimit(o.MaxComplexity))
	srv.AroundFields(internalErrors)
	srv.SetErrorPresenter(presentError(logger, o.RequestID))
	srv.SetRecoverFunc(recoverPanic)
	return srv
}
