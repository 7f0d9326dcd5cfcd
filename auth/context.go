package auth

import "context"

// Identity is who a request acts for: the user of a verified access token,
// read from the Store for this request.
type Identity struct {
	User      *User
	SessionID string
	// Scopes are the token's scopes that the user still holds, so that
	// taking a scope away applies at once.
	Scopes   []string
	ClientID string
	TokenID  string
}

type contextKey int

const (
	identityKey contextKey = iota
	requestIDKey
	clientAddrKey
)

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// IdentityFrom returns the identity in ctx, or nil for an anonymous request.
func IdentityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey).(*Identity)
	return id
}

// WithRequestID returns ctx carrying the request id that logs and internal
// errors name.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithClientAddr returns ctx carrying the address of the client that sent
// the request, which login throttling counts failures against.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey, addr)
}

// ClientAddr returns the client address in ctx, or "".
func ClientAddr(ctx context.Context) string {
	addr, _ := ctx.Value(clientAddrKey).(string)
	return addr
}
