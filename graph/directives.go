package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"authql/auth"
)

// authDirective implements @auth(scopes): the field resolves only for a
// signed-in user (UNAUTHENTICATED otherwise) holding every listed scope
// (FORBIDDEN otherwise, with extensions.requiredScopes). The bearer
// middleware has already put the user in ctx; the directive only decides.
func authDirective(ctx context.Context, _ any, next graphql.Resolver, scopes []string) (any, error) {
	if err := auth.RequireScopes(auth.IdentityFrom(ctx), scopes...); err != nil {
		return nil, err
	}
	return next(ctx)
}
