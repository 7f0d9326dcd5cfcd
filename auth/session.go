package auth

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Session is one login: it opens with a password grant and lives while its
// refresh tokens are used within the refresh token TTL. Access tokens name
// their session (claim sid) and stop working the moment it ends.
type Session struct {
	ID         string
	UserID     string
	ClientID   string // empty for the first-party public client
	UserAgent  string
	Scopes     []string // the scopes the login was granted
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
}

// Live reports whether the session may still be used at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

// Authenticate verifies an access token and reads its user and session, so
// that logout, revocation and disabling take effect at once. Every failure is
// a CodeInvalidToken error whose message may be shown to the client. The
// identity remembers origin, the request's.
func (s *Service) Authenticate(ctx context.Context, token string, origin Origin) (*Identity, error) {
	if s.access == nil {
		return nil, errNoKeys
	}
	claims, err := s.access.verify(token)
	if err != nil {
		return nil, err
	}
	sess, user, err := s.store.SessionWithUser(ctx, claims.SessionID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, Errorf(CodeInvalidToken, "the session of the access token has ended")
	case err != nil:
		return nil, err
	case sess.UserID != claims.Subject:
		return nil, Errorf(CodeInvalidToken, "the access token does not match its session")
	case !sess.Live(s.now()):
		return nil, Errorf(CodeInvalidToken, "the session of the access token has ended")
	case user.Disabled:
		return nil, Errorf(CodeInvalidToken, "the user of the access token is disabled")
	}
	return &Identity{
		User:      user,
		SessionID: sess.ID,
		Scopes:    intersectScopes(claims.scopes, user.Scopes),
		ClientID:  claims.ClientID,
		TokenID:   claims.ID,
		Origin:    origin,
	}, nil
}

// Logout ends the session of id, or with all every session of its user.
// Access tokens of ended sessions stop working at once. Without a signed-in
// user it is CodeUnauthenticated.
func (s *Service) Logout(ctx context.Context, id *Identity, all bool) error {
	if err := requireUser(id); err != nil {
		return err
	}
	if all {
		return s.store.RevokeSessions(ctx, id.User.ID, s.now())
	}
	err := s.store.RevokeSession(ctx, id.User.ID, id.SessionID, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil // ended meanwhile: logout is idempotent
	}
	return err
}

// Sessions returns the live sessions of user userID. Without an identity it
// is CodeUnauthenticated; callers other than the user need the users:read
// scope (CodeForbidden).
func (s *Service) Sessions(ctx context.Context, id *Identity, userID string) ([]*Session, error) {
	if err := requireIdentity(id); err != nil {
		return nil, err
	}
	if !id.isUser(userID) {
		if err := RequireScopes(id, ScopeUsersRead); err != nil {
			return nil, err
		}
	}
	return s.store.Sessions(ctx, userID, s.now())
}

// RevokeSession ends one of id's user's own sessions. Another user's session
// and an unknown one are the same CodeInvalidRequest error; without a
// signed-in user it is CodeUnauthenticated.
func (s *Service) RevokeSession(ctx context.Context, id *Identity, sessionID string) error {
	if err := requireUser(id); err != nil {
		return err
	}
	err := s.store.RevokeSession(ctx, id.User.ID, sessionID, s.now())
	if errors.Is(err, ErrNotFound) {
		return fieldError("id", "you have no live session with that id")
	}
	return err
}

// Revoke ends the session of a refresh token or an access token (RFC 7009
// section 2.1), so that every token of the session stops working at once.
// hint ("access_token" or "refresh_token") only orders the search. A token
// that is unknown, invalid or already revoked is not an error (section 2.2);
// a token issued to another client is CodeUnauthorizedClient.
func (s *Service) Revoke(ctx context.Context, client *Client, token, hint string) error {
	lookups := []func(context.Context, string) (*Session, error){s.refreshTokenSession, s.accessTokenSession}
	if hint == "access_token" {
		slices.Reverse(lookups)
	}
	for _, lookup := range lookups {
		sess, err := lookup(ctx, token)
		if err != nil {
			return err
		}
		if sess == nil {
			continue
		}
		if sess.ClientID != clientID(client) {
			return Errorf(CodeUnauthorizedClient, "the token was issued to another client")
		}
		err = s.store.RevokeSession(ctx, sess.UserID, sess.ID, s.now())
		if errors.Is(err, ErrNotFound) {
			return nil // ended already
		}
		return err
	}
	return nil
}

// refreshTokenSession returns the session of refresh token tok, or nil.
func (s *Service) refreshTokenSession(ctx context.Context, tok string) (*Session, error) {
	rec, err := s.storedRefreshToken(ctx, tok)
	if rec == nil {
		return nil, err
	}
	return rec.Session, nil
}

// storedRefreshToken returns the stored record of refresh token tok, live
// or not, or nil when there is none.
func (s *Service) storedRefreshToken(ctx context.Context, tok string) (*RefreshToken, error) {
	if s.refresh == nil {
		return nil, errNoKeys
	}
	if !s.refresh.wellFormed(tok) {
		return nil, nil
	}
	rec, err := s.store.RefreshToken(ctx, HashToken(tok))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// accessTokenSession returns the session of access token tok, or nil when
// tok is not a valid access token.
func (s *Service) accessTokenSession(ctx context.Context, tok string) (*Session, error) {
	_, sess, _, err := s.verifiedAccessToken(ctx, tok)
	return sess, err
}

// verifiedAccessToken returns the claims of access token tok with its
// session and user, live or not, or nils when tok is not a valid access
// token of a stored session.
func (s *Service) verifiedAccessToken(ctx context.Context, tok string) (*accessClaims, *Session, *User, error) {
	if s.access == nil {
		return nil, nil, nil, errNoKeys
	}
	claims, err := s.access.verify(tok)
	if err != nil {
		return nil, nil, nil, nil
	}
	sess, user, err := s.store.SessionWithUser(ctx, claims.SessionID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return claims, sess, user, nil
}
