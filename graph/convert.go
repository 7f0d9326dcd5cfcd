package graph

import (
	"authql/auth"
	"authql/graph/model"
)

// authPayload converts a grant; nil stays nil so that resolvers can return
// authPayload(grant), err.
func authPayload(g *auth.Grant) *model.AuthPayload {
	if g == nil {
		return nil
	}
	return &model.AuthPayload{
		AccessToken:  g.AccessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int(g.ExpiresIn.Seconds()),
		RefreshToken: g.RefreshToken,
		Scope:        auth.FormatScope(g.Scopes),
		User:         g.User,
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
