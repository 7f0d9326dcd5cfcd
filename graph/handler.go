package graph

import (
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"authql/auth"
	"authql/graph/generated"
)

// NewHandler returns the GraphQL-over-HTTP handler for /query: POST with
// JSON, and GET for queries only. It expects the bearer middleware in front.
func NewHandler(svc *auth.Service, logger *slog.Logger) http.Handler {
	srv := handler.New(generated.NewExecutableSchema(generated.Config{
		Resolvers:  &Resolver{Service: svc, Logger: logger},
		Directives: generated.DirectiveRoot{Auth: authDirective},
	}))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.AroundFields(internalErrors)
	srv.SetErrorPresenter(presentError(logger))
	srv.SetRecoverFunc(recoverPanic)
	return srv
}
