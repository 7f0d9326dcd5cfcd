package auth

import "context"

// Identity is who a request acts for: the user of a verified access token,
// read from the Store for this request, or the Operator.
type Identity struct {
	User      *User
	SessionID string
	// Scopes are the token's scopes that the user still holds, so that
	// taking a scope away applies at once.
	Scopes   []string
	ClientID string
	TokenID  string
	// Origin is where the request that presented the token came from.
	Origin Origin

	operator bool
}

// Operator is the identity of whoever holds the database itself: the CLI.
// It passes every scope check and has no user; no token can carry it.
var Operator = &Identity{operator: true}

// isUser reports whether id is the user userID (the Operator is no user).
func (id *Identity) isUser(userID string) bool {
	return !id.operator && id.User.ID == userID
}

// actor names id in the log of an administrative change.
func (id *Identity) actor() string {
	if id.operator {
		return "operator"
	}
	return "user:" + id.User.ID
}

// requireIdentity refuses a request without an identity. Every Service
// method that acts for an identity starts with it, with requireUser or with
// RequireScopes: the schema's @auth declares the same, but the Service does
// not rely on it.
func requireIdentity(id *Identity) error {
	if id == nil {
		return Errorf(CodeUnauthenticated, "this operation needs a signed-in user")
	}
	return nil
}

// requireUser refuses a request without a signed-in user: no identity, or
// the Operator, who has no session or password of its own.
func requireUser(id *Identity) error {
	if id == nil || id.operator {
		return Errorf(CodeUnauthenticated, "this operation needs a signed-in user")
	}
	return nil
}

type contextKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// IdentityFrom returns the identity in ctx, or nil for an anonymous request.
func IdentityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(contextKey{}).(*Identity)
	return id
}

// Origin is where a request came from, as the edge that received it saw
// it.
type Origin struct {
	// ClientAddr is the client address that throttling counts against and
	// security events name: an IP address, IPv6 as its /64.
	ClientAddr string
	// UserAgent is recorded on the sessions the request opens.
	UserAgent string
}
