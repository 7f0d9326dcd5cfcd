// Package graph is authql's GraphQL edge: resolvers that translate between
// the schema in schema/ and auth.Service, the @auth directive, and the
// error presenter. Code under generated/ and model/ comes from gqlgen.
package graph

//go:generate go tool gqlgen generate

import (
	"context"
	"log/slog"

	"authql/auth"
)

// Resolver is the one place dependencies come into the resolvers.
type Resolver struct {
	Service *auth.Service
	Logger  *slog.Logger
	// Origin tells where the request of a context came from.
	Origin func(context.Context) auth.Origin
}
