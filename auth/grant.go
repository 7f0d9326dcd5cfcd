package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Grant is what a successful login, signup or refresh hands out (RFC 6749
// section 5.1).
type Grant struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	Scopes       []string
	User         *User
	Session      *Session
}

// PasswordGrant is a request for tokens by username and password (RFC 6749
// section 4.3.2).
type PasswordGrant struct {
	Username string
	Password string
	// Scope is the space-delimited scope requested; "" means every scope
	// granted to the user.
	Scope string
	// Client is the client from AuthenticateClient; nil for first-party.
	Client *Client
	Origin Origin
}

// Login checks a username and password and opens a session (RFC 6749
// section 4.3). A wrong username, a wrong password and a disabled user all
// return the same CodeInvalidGrant error after the same bcrypt work; so does
// a username longer than MaxUsernameLen, before any work, since no user can
// have it. Failed logins are counted (see startLogin), and past the limits
// every attempt is CodeRateLimited, for real and unknown usernames alike
// (section 4.3.2). A malformed scope, or one not granted to the user or the
// client, is CodeInvalidScope; a client not allowed the grant is
// CodeUnauthorizedClient; too much bcrypt work at once is CodeUnavailable.
// The session opens only if the password and the user's enabled state are
// still those checked, so a password change or a disabling that commits
// while the password is being checked wins.
//
// Config.Metrics is told how the login ended (an Outcome).
func (s *Service) Login(ctx context.Context, req PasswordGrant) (_ *Grant, err error) {
	if s.cfg.Metrics != nil {
		defer func() { s.cfg.Metrics.ObserveLogin(outcomeOf(err)) }()
	}
	if err := req.Client.allows(GrantPassword); err != nil {
		return nil, err
	}
	requested, err := ParseScope(req.Scope)
	if err != nil {
		return nil, err
	}
	if usernameTooLong(req.Username) {
		s.securityEvent(ctx, req.Origin.ClientAddr, "login failed", "login_failed", "reason", "username too long")
		return nil, errBadCredentials()
	}
	key, addr := UsernameKey(req.Username), req.Origin.ClientAddr
	attempt, err := s.startLogin(ctx, key, addr, false)
	if err != nil {
		return nil, err
	}
	user, cred, err := s.store.UserByUsername(ctx, key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		attempt.aborted()
		return nil, err
	}
	ok, rehash, err := s.passwords.check(ctx, cred.Hash, req.Password)
	if err != nil {
		attempt.aborted()
		return nil, err
	}
	// The disabled check comes after the password check so that the answer
	// never tells whether a disabled account exists.
	if !ok || user.Disabled {
		attempt.failed()
		s.securityEvent(ctx, addr, "login failed", "login_failed", userAttr(user)...)
		return nil, errBadCredentials()
	}
	attempt.succeeded(attempt.pair)
	scopes := req.Client.narrow(user.Scopes)
	if requested != nil {
		if missing := MissingScopes(scopes, requested); missing != nil {
			// The password was right: say so in the log, since the answer
			// alone would let a guess be confirmed without a trace.
			s.securityEvent(ctx, addr, "login refused: the password was right, a scope was not granted",
				"login_scope_refused", "user_id", user.ID)
			return nil, Errorf(CodeInvalidScope, "scope %q is not granted to this user and client", FormatScope(missing))
		}
		scopes = requested
	}
	if rehash {
		s.upgradeHash(ctx, user, cred.Version, req.Password)
	}
	return s.openSession(ctx, user, cred.Version, scopes, req.Client, req.Origin)
}

// upgradeHash re-hashes a password whose hash has another cost than the
// configured one, unless the password changed meanwhile. A failure only
// delays the upgrade to the next login.
func (s *Service) upgradeHash(ctx context.Context, u *User, version int64, password string) {
	hash, err := s.passwords.hash(ctx, password)
	if err == nil {
		_, err = s.store.UpgradePasswordHash(ctx, u.ID, hash, version)
	}
	if err != nil {
		s.log.WarnContext(ctx, "upgrading password hash failed", "user_id", u.ID, "err", err)
	}
}

// openSession starts a session for u, whose credentials were checked at
// version, and issues its first tokens. The origin's client address becomes
// one the user logged in from.
func (s *Service) openSession(ctx context.Context, u *User, version int64, scopes []string, client *Client, origin Origin) (*Grant, error) {
	if s.refresh == nil {
		return nil, errNoKeys
	}
	now := s.now()
	sess := &Session{
		ID:         NewID(),
		UserID:     u.ID,
		ClientID:   clientID(client),
		UserAgent:  truncateUTF8(origin.UserAgent, maxUserAgentBytes),
		Scopes:     scopes,
		CreatedAt:  now,
		LastUsedAt: now,
		ExpiresAt:  now.Add(s.cfg.RefreshTokenTTL),
	}
	refresh := s.refresh.generate()
	err := s.store.CreateSession(ctx, NewSession{
		Session:           sess,
		RefreshHash:       HashToken(refresh),
		CredentialVersion: version,
		LoginAddr:         origin.ClientAddr,
		ClientRegistered:  client != nil && client.Registered,
	})
	if errors.Is(err, ErrCredentialsChanged) || errors.Is(err, ErrNotFound) {
		s.securityEvent(ctx, origin.ClientAddr, "login refused: the password changed, the user was disabled or deleted, or the client removed, while it was checked",
			"login_raced_credential_change", "user_id", u.ID)
		return nil, errBadCredentials()
	}
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return s.grant(u, sess, scopes, refresh)
}

func (s *Service) grant(u *User, sess *Session, scopes []string, refresh string) (*Grant, error) {
	if s.access == nil {
		return nil, errNoKeys
	}
	access, err := s.access.issue(u, sess, scopes)
	if err != nil {
		return nil, err
	}
	return &Grant{
		AccessToken:  access,
		RefreshToken: refresh,
		ExpiresIn:    s.cfg.AccessTokenTTL,
		Scopes:       scopes,
		User:         u,
		Session:      sess,
	}, nil
}

// RefreshGrant is a request to exchange a refresh token (RFC 6749 section
// 6).
type RefreshGrant struct {
	RefreshToken string
	// Scope may narrow the scopes of the new access token; "" keeps them.
	Scope string
	// Client is the client from AuthenticateClient; nil for first-party.
	Client *Client
	Origin Origin
}

// Refresh rotates a refresh token: the one presented stops working and a new
// one is returned with a new access token (RFC 6749 section 6, RFC 9700
// section 4.14.2). A token already rotated is theft and ends the session,
// unless it comes back within RefreshReuseGrace, when it gets the same new
// token again. Unknown, expired, revoked and reused tokens, a disabled user
// and a token issued to another client are CodeInvalidGrant; a scope beyond
// the session's is CodeInvalidScope; a client not allowed the grant is
// CodeUnauthorizedClient.
//
// Config.Metrics is told how the refresh ended (an Outcome):
// OutcomeReuseDetected for a replay that ended the session.
func (s *Service) Refresh(ctx context.Context, req RefreshGrant) (_ *Grant, err error) {
	reused := false
	if s.cfg.Metrics != nil {
		defer func() {
			outcome := outcomeOf(err)
			if reused && outcome == OutcomeInvalidGrant {
				outcome = OutcomeReuseDetected
			}
			s.cfg.Metrics.ObserveRefresh(outcome)
		}()
	}
	if err := req.Client.allows(GrantRefreshToken); err != nil {
		return nil, err
	}
	requested, err := ParseScope(req.Scope)
	if err != nil {
		return nil, err
	}
	if s.refresh == nil {
		return nil, errNoKeys
	}
	if !s.refresh.wellFormed(req.RefreshToken) {
		return nil, errBadRefreshToken()
	}
	parentHash := HashToken(req.RefreshToken)
	rec, err := s.store.RefreshToken(ctx, parentHash)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadRefreshToken()
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	sess, user := rec.Session, rec.User
	if !sess.Live(now) || user.Disabled || sess.ClientID != clientID(req.Client) {
		return nil, errBadRefreshToken()
	}
	scopes := sess.Scopes
	if requested != nil {
		if missing := MissingScopes(sess.Scopes, requested); missing != nil {
			return nil, Errorf(CodeInvalidScope, "scope %q exceeds the scope of the session", FormatScope(missing))
		}
		scopes = requested
	}
	// Scopes taken from the user or the client since the login are gone.
	scopes = req.Client.narrow(intersectScopes(scopes, user.Scopes))

	child := s.refresh.child(req.RefreshToken)
	rotatedAt := rec.RotatedAt
	if rotatedAt == nil {
		// Each rotation stores a hash that theft detection keeps: a session
		// may rotate only so often.
		a := s.newAttempt(ctx, now)
		wait, err := a.take(s.guards.refresh.bucket(sess.ID))
		if err != nil {
			return nil, err
		}
		if wait > 0 {
			s.securityEvent(ctx, req.Origin.ClientAddr, "refresh throttled", "refresh_throttled",
				"user_id", user.ID, "session_id", sess.ID)
			return nil, errThrottled("refreshes of this session", wait)
		}
		rotated, err := s.store.RotateRefreshToken(ctx, parentHash, HashToken(child), now, now.Add(s.cfg.RefreshTokenTTL))
		if errors.Is(err, ErrNotFound) {
			// Logged out, revoked, disabled or deleted since the read.
			a.aborted()
			return nil, errBadRefreshToken()
		}
		if err != nil {
			a.aborted()
			return nil, fmt.Errorf("rotate refresh token: %w", err)
		}
		if rotated {
			a.failed() // a rotation keeps its event
			sess.LastUsedAt, sess.ExpiresAt = now, now.Add(s.cfg.RefreshTokenTTL)
			return s.grant(user, sess, scopes, child)
		}
		// A concurrent request rotated it first: it rotated nothing, and
		// is the replay it is.
		a.aborted()
		rec, err = s.store.RefreshToken(ctx, parentHash)
		if errors.Is(err, ErrNotFound) {
			return nil, errBadRefreshToken()
		}
		if err != nil {
			return nil, fmt.Errorf("reread refresh token: %w", err)
		}
		if !rec.Session.Live(now) || rec.User.Disabled {
			return nil, errBadRefreshToken()
		}
		rotatedAt = rec.RotatedAt
	}
	if now.Sub(*rotatedAt) > s.cfg.RefreshReuseGrace {
		if err := s.store.RevokeSession(ctx, user.ID, sess.ID, now); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("revoke session after refresh token reuse: %w", err)
		}
		s.securityEvent(ctx, req.Origin.ClientAddr, "refresh token reused after rotation; session revoked", "refresh_token_reused",
			"user_id", user.ID, "session_id", sess.ID, "rotated_at", rotatedAt.UTC())
		reused = true
		return nil, errBadRefreshToken()
	}
	return s.grant(user, rec.Session, scopes, child)
}
