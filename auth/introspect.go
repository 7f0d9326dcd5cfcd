package auth

import (
	"context"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Introspection is what token introspection tells about a token (RFC 7662
// section 2.2). Only Active is set for a token that is not live.
type Introspection struct {
	Active bool
	// TokenType is "Bearer" for an access token and "refresh_token" for a
	// refresh token.
	TokenType string
	// Scopes are the token's scopes that its user still holds.
	Scopes    []string
	ClientID  string
	Username  string
	Subject   string // the user id
	Audience  string
	Issuer    string
	TokenID   string // jti; an access token's only
	SessionID string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Introspect tells client whether token is live right now (RFC 7662): an
// access token that verifies, whose session is live and whose user is
// enabled, or the current refresh token of such a session. hint
// ("access_token" or "refresh_token") only orders the search. Only a
// registered confidential client, authenticated by AuthenticateClient, may
// ask (else CodeInvalidClient); it may ask about any client's tokens, since
// resource servers check the tokens of the apps that call them. Anything
// that is not a live token is an inactive answer, not an error.
func (s *Service) Introspect(ctx context.Context, client *Client, token, hint string) (*Introspection, error) {
	if client == nil || !client.Registered || !client.Confidential {
		return nil, Errorf(CodeInvalidClient, "introspection is for registered confidential clients; authenticate with the client's secret")
	}
	if token == "" {
		return nil, Errorf(CodeInvalidRequest, "the token parameter is required")
	}
	lookups := []func(context.Context, string) (*Introspection, error){s.introspectRefreshToken, s.introspectAccessToken}
	if hint == "access_token" {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	for _, lookup := range lookups {
		in, err := lookup(ctx, token)
		if err != nil || in != nil {
			return in, err
		}
	}
	return &Introspection{Active: false}, nil
}

// introspectAccessToken describes tok if it is a live access token, or
// returns nil.
func (s *Service) introspectAccessToken(ctx context.Context, tok string) (*Introspection, error) {
	claims, sess, user, err := s.verifiedAccessToken(ctx, tok)
	if claims == nil {
		return nil, err
	}
	if sess.UserID != claims.Subject || !sess.Live(s.now()) || user.Disabled {
		return nil, nil
	}
	return &Introspection{
		Active:    true,
		TokenType: "Bearer",
		Scopes:    intersectScopes(strings.Fields(claims.Scope), user.Scopes),
		ClientID:  claims.ClientID,
		Username:  user.Username,
		Subject:   user.ID,
		Audience:  s.cfg.Audience,
		Issuer:    s.cfg.Issuer,
		TokenID:   claims.ID,
		SessionID: sess.ID,
		IssuedAt:  timeOf(claims.IssuedAt),
		ExpiresAt: timeOf(claims.ExpiresAt),
	}, nil
}

// timeOf is the time of a NumericDate claim, zero when the claim is absent.
func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

// introspectRefreshToken describes tok if it is the current refresh token
// of a live session of an enabled user, or returns nil. A rotated token is
// not live, even within the reuse grace window: the window only spares a
// retrying client from theft detection.
func (s *Service) introspectRefreshToken(ctx context.Context, tok string) (*Introspection, error) {
	rec, err := s.storedRefreshToken(ctx, tok)
	if rec == nil {
		return nil, err
	}
	sess, user := rec.Session, rec.User
	if rec.RotatedAt != nil || !sess.Live(s.now()) || user.Disabled {
		return nil, nil
	}
	return &Introspection{
		Active:    true,
		TokenType: "refresh_token",
		Scopes:    intersectScopes(sess.Scopes, user.Scopes),
		ClientID:  sess.ClientID,
		Username:  user.Username,
		Subject:   user.ID,
		Audience:  s.cfg.Audience,
		Issuer:    s.cfg.Issuer,
		SessionID: sess.ID,
		// The session's last use is when its current token was issued:
		// the login, or the rotation that made it.
		IssuedAt:  sess.LastUsedAt,
		ExpiresAt: sess.ExpiresAt,
	}, nil
}
