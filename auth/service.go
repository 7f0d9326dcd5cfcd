package auth

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Config holds what the Service needs to know. Zero durations are invalid;
// NewService checks.
type Config struct {
	// Secret is the HS256 key, at least MinSecretLen bytes; empty for a
	// Service that only manages users and clients (the CLI), whose token
	// methods then fail with CodeInternal.
	Secret []byte
	// RefreshSecret derives rotated refresh tokens from their parents. It
	// must not be Secret. Empty as Secret may be.
	RefreshSecret []byte
	// Issuer is the iss claim of every access token, checked on each one.
	Issuer string
	// Audience, when set, is the aud claim, checked on each access token.
	Audience string
	// AccessTokenTTL is the lifetime of an access token.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is how long a session lives without a refresh.
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long after a rotation a replayed refresh
	// token gets the same new token instead of ending the session.
	RefreshReuseGrace time.Duration
	// BcryptCost is the cost of new password hashes; older hashes at a
	// lower cost are upgraded at the next login.
	BcryptCost int
	// BcryptConcurrency bounds the bcrypt operations running at once; 0
	// means runtime.NumCPU().
	BcryptConcurrency int
	// BcryptWait is how long a bcrypt operation queues for a slot before
	// the request gets CodeUnavailable; 0 means DefaultBcryptWait.
	BcryptWait time.Duration
	// LoginUserLimit bounds failed logins per username from addresses
	// that are not known for it; LoginPairLimit per username and client
	// address; LoginAddrLimit failed logins and client authentications per
	// client address; ClientAuthLimit failed client authentications per
	// client id; SignupAddrLimit signups per client address. Zero values
	// mean the defaults.
	LoginUserLimit, LoginPairLimit, LoginAddrLimit, ClientAuthLimit, SignupAddrLimit Limit
	// SignupClosed turns the Signup method off.
	SignupClosed bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives security events (never secrets); nil discards them.
	Logger *slog.Logger
}

// Service is authql's core: it turns credentials into sessions and tokens and
// tokens back into users. Both transports, POST /token and the GraphQL
// mutations, call the same methods. Errors it returns are *Error values,
// or faults that the edges report as CodeInternal.
type Service struct {
	store     Store
	passwords *passwords
	// access and refresh are nil in a Service without keys.
	access  *accessTokens
	refresh *refreshTokens
	guards  guards
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
}

// Defaults for the zero values of Config.
var (
	DefaultBcryptWait      = time.Second
	DefaultLoginUserLimit  = Limit{N: 10, Per: 15 * time.Minute}
	DefaultLoginPairLimit  = Limit{N: 10, Per: 15 * time.Minute}
	DefaultLoginAddrLimit  = Limit{N: 100, Per: 15 * time.Minute}
	DefaultClientAuthLimit = Limit{N: 20, Per: 15 * time.Minute}
	DefaultSignupAddrLimit = Limit{N: 20, Per: time.Hour}
)

// errNoKeys is the fault of a token method of a Service built without keys.
var errNoKeys = errors.New("this service has no token keys: it manages users and clients only")

// NewService returns a Service over store configured by cfg.
func NewService(store Store, cfg Config) (*Service, error) {
	if (len(cfg.Secret) == 0) != (len(cfg.RefreshSecret) == 0) {
		return nil, errors.New("the JWT secret and the refresh token secret must both be set, or neither")
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("the JWT secret is %d bytes; it must be at least %d", len(cfg.Secret), MinSecretLen)
	}
	if len(cfg.RefreshSecret) > 0 && len(cfg.RefreshSecret) < MinSecretLen {
		return nil, fmt.Errorf("the refresh token secret is %d bytes; it must be at least %d", len(cfg.RefreshSecret), MinSecretLen)
	}
	if len(cfg.Secret) > 0 && hmac.Equal(cfg.Secret, cfg.RefreshSecret) {
		return nil, errors.New("the refresh token secret must not be the JWT secret")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("the JWT issuer must not be empty")
	}
	if cfg.AccessTokenTTL <= 0 || cfg.RefreshTokenTTL <= 0 || cfg.RefreshReuseGrace < 0 {
		return nil, errors.New("token lifetimes must be positive")
	}
	if cfg.BcryptConcurrency == 0 {
		cfg.BcryptConcurrency = runtime.NumCPU()
	}
	if cfg.BcryptWait == 0 {
		cfg.BcryptWait = DefaultBcryptWait
	}
	for _, l := range []struct {
		limit *Limit
		def   Limit
	}{
		{&cfg.LoginUserLimit, DefaultLoginUserLimit},
		{&cfg.LoginPairLimit, DefaultLoginPairLimit},
		{&cfg.LoginAddrLimit, DefaultLoginAddrLimit},
		{&cfg.ClientAuthLimit, DefaultClientAuthLimit},
		{&cfg.SignupAddrLimit, DefaultSignupAddrLimit},
	} {
		if *l.limit == (Limit{}) {
			*l.limit = l.def
		}
	}
	pw, err := newPasswords(cfg.BcryptCost, cfg.BcryptConcurrency, cfg.BcryptWait)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		store:     store,
		passwords: pw,
		guards: guards{
			user:   newThrottle(cfg.LoginUserLimit),
			pair:   newThrottle(cfg.LoginPairLimit),
			addr:   newThrottle(cfg.LoginAddrLimit),
			client: newThrottle(cfg.ClientAuthLimit),
			signup: newThrottle(cfg.SignupAddrLimit),
		},
		cfg: cfg,
		now: now,
		log: log,
	}
	if len(cfg.Secret) > 0 {
		s.access = newAccessTokens(cfg.Secret, cfg.Issuer, cfg.Audience, cfg.AccessTokenTTL, now)
		s.refresh = newRefreshTokens(cfg.RefreshSecret)
	}
	return s, nil
}

// LoadPasswordCosts reads the bcrypt costs of the stored password hashes,
// so that from now on every password check costs at least as much as one
// against the most expensive of them (see passwords).
func (s *Service) LoadPasswordCosts(ctx context.Context) error {
	cost, err := s.store.MaxPasswordCost(ctx)
	if err != nil {
		return fmt.Errorf("read the stored password costs: %w", err)
	}
	s.passwords.raiseFloor(cost)
	return nil
}

// Close stops the service's bcrypt workers. The service must not be used
// after.
func (s *Service) Close() { s.passwords.close() }

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
	Client    *Client
	UserAgent string
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
func (s *Service) Login(ctx context.Context, req PasswordGrant) (*Grant, error) {
	if err := req.Client.allows(GrantPassword); err != nil {
		return nil, err
	}
	requested, err := ParseScope(req.Scope)
	if err != nil {
		return nil, err
	}
	if usernameTooLong(req.Username) {
		s.securityEvent(ctx, "login failed", "login_failed", "reason", "username too long")
		return nil, errBadCredentials()
	}
	key, addr := UsernameKey(req.Username), ClientAddr(ctx)
	attempt, err := s.startLogin(ctx, key, addr)
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
		s.securityEvent(ctx, "login failed", "login_failed", userAttr(user)...)
		return nil, errBadCredentials()
	}
	attempt.succeeded(attempt.pair)
	scopes := req.Client.narrow(user.Scopes)
	if requested != nil {
		if missing := MissingScopes(scopes, requested); missing != nil {
			return nil, Errorf(CodeInvalidScope, "scope %q is not granted to this user and client", FormatScope(missing))
		}
		scopes = requested
	}
	if rehash {
		s.upgradeHash(ctx, user, cred.Version, req.Password)
	}
	return s.openSession(ctx, user, cred.Version, scopes, clientID(req.Client), req.UserAgent)
}

// usernameTooLong reports whether username has more than MaxUsernameLen
// characters, looking at no more of it than that takes.
func usernameTooLong(username string) bool {
	return len(username) > MaxUsernameLen*utf8.UTFMax || utf8.RuneCountInString(username) > MaxUsernameLen
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
// version, and issues its first tokens. The client address of ctx becomes
// one the user logged in from.
func (s *Service) openSession(ctx context.Context, u *User, version int64, scopes []string, clientID, userAgent string) (*Grant, error) {
	if s.refresh == nil {
		return nil, errNoKeys
	}
	now := s.now()
	sess := &Session{
		ID:         NewID(),
		UserID:     u.ID,
		ClientID:   clientID,
		UserAgent:  truncateUTF8(userAgent, maxUserAgentBytes),
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
		LoginAddr:         ClientAddr(ctx),
	})
	if errors.Is(err, ErrCredentialsChanged) || errors.Is(err, ErrNotFound) {
		s.securityEvent(ctx, "login refused: the password changed or the user was disabled or deleted while it was checked",
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
}

// Refresh rotates a refresh token: the one presented stops working and a new
// one is returned with a new access token (RFC 6749 section 6, RFC 9700
// section 4.14.2). A token already rotated is theft and ends the session,
// unless it comes back within RefreshReuseGrace, when it gets the same new
// token again. Unknown, expired, revoked and reused tokens, a disabled user
// and a token issued to another client are CodeInvalidGrant; a scope beyond
// the session's is CodeInvalidScope; a client not allowed the grant is
// CodeUnauthorizedClient.
func (s *Service) Refresh(ctx context.Context, req RefreshGrant) (*Grant, error) {
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
		rotated, err := s.store.RotateRefreshToken(ctx, parentHash, HashToken(child), now, now.Add(s.cfg.RefreshTokenTTL))
		if err != nil {
			return nil, fmt.Errorf("rotate refresh token: %w", err)
		}
		if rotated {
			sess.LastUsedAt, sess.ExpiresAt = now, now.Add(s.cfg.RefreshTokenTTL)
			return s.grant(user, sess, scopes, child)
		}
		// A concurrent request rotated it first: treat this one as the
		// replay it is.
		if rec, err = s.store.RefreshToken(ctx, parentHash); err != nil {
			return nil, fmt.Errorf("reread refresh token: %w", err)
		}
		rotatedAt = rec.RotatedAt
	}
	if now.Sub(*rotatedAt) > s.cfg.RefreshReuseGrace {
		if err := s.store.RevokeSession(ctx, user.ID, sess.ID, now); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("revoke session after refresh token reuse: %w", err)
		}
		s.securityEvent(ctx, "refresh token reused after rotation; session revoked", "refresh_token_reused",
			"user_id", user.ID, "session_id", sess.ID, "rotated_at", rotatedAt.UTC())
		return nil, errBadRefreshToken()
	}
	return s.grant(user, rec.Session, scopes, child)
}

// Authenticate verifies an access token and reads its user and session, so
// that logout, revocation and disabling take effect at once. Every failure is
// a CodeInvalidToken error whose message may be shown to the client.
func (s *Service) Authenticate(ctx context.Context, token string) (*Identity, error) {
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
		Scopes:    intersectScopes(strings.Fields(claims.Scope), user.Scopes),
		ClientID:  claims.ClientID,
		TokenID:   claims.ID,
	}, nil
}

// Logout ends the session of id, or with all every session of its user.
// Access tokens of ended sessions stop working at once.
func (s *Service) Logout(ctx context.Context, id *Identity, all bool) error {
	if all {
		return s.store.RevokeSessions(ctx, id.User.ID, s.now())
	}
	err := s.store.RevokeSession(ctx, id.User.ID, id.SessionID, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil // ended meanwhile: logout is idempotent
	}
	return err
}

// NewUser describes a user to create.
type NewUser struct {
	Username string
	Password string
	Email    string
	FullName string
	Scopes   []string
}

// CreateUser checks the username, password and profile rules and creates the
// user. Broken rules and a taken username are CodeInvalidRequest errors
// naming the field.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	if err := ValidateUsername(nu.Username); err != nil {
		return nil, err
	}
	if err := ValidatePassword("password", nu.Password); err != nil {
		return nil, err
	}
	if err := validateProfile(nu.Email, nu.FullName); err != nil {
		return nil, err
	}
	if err := validateScopes(nu.Scopes); err != nil {
		return nil, err
	}
	hash, err := s.passwords.hash(ctx, nu.Password)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	u := &User{
		ID:        NewID(),
		Username:  nu.Username,
		Email:     nu.Email,
		FullName:  nu.FullName,
		Scopes:    append([]string{}, nu.Scopes...),
		CreatedAt: s.now(),
	}
	err = s.store.CreateUser(ctx, u, hash)
	if errors.Is(err, ErrUsernameTaken) {
		return nil, fieldError("username", "username %q is taken", nu.Username)
	}
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// Signup creates a user with no scopes and opens its first session. It is
// CodeForbidden when signup is closed, and returns CreateUser's errors.
//
// Every signup executed counts against its client address, taken or not,
// since "username is taken" tells whether an account exists: past
// SignupAddrLimit it is CodeRateLimited.
func (s *Service) Signup(ctx context.Context, nu NewUser, clientID, userAgent string) (*Grant, error) {
	if s.cfg.SignupClosed {
		return nil, Errorf(CodeForbidden, "signup is closed on this server")
	}
	a := &attempt{at: s.now()}
	if wait := a.take(s.guards.signup, keyOf(ClientAddr(ctx))); wait > 0 {
		s.securityEvent(ctx, "signup throttled", "signup_throttled")
		return nil, errThrottled("signups from this address", wait)
	}
	defer a.failed() // every signup uses up the budget
	nu.Scopes = nil
	u, err := s.CreateUser(ctx, nu)
	if err != nil {
		return nil, err
	}
	return s.openSession(ctx, u, 0, []string{}, clientID, userAgent)
}

// ChangePassword replaces the password of id's user after checking the
// current one, and ends every other session of the user. A wrong current
// password is CodeInvalidGrant on field currentPassword, and counts as a
// failed login, so a stolen access token cannot guess the password faster;
// a new password that breaks the rules is CodeInvalidRequest on field
// newPassword.
func (s *Service) ChangePassword(ctx context.Context, id *Identity, current, next string) error {
	attempt, err := s.startLogin(ctx, UsernameKey(id.User.Username), ClientAddr(ctx))
	if err != nil {
		return err
	}
	_, cred, err := s.store.UserByID(ctx, id.User.ID)
	if err != nil {
		attempt.aborted()
		return err
	}
	ok, _, err := s.passwords.check(ctx, cred.Hash, current)
	if err != nil {
		attempt.aborted()
		return err
	}
	if !ok {
		attempt.failed()
		s.securityEvent(ctx, "password change refused: wrong current password", "login_failed", "user_id", id.User.ID)
		e := Errorf(CodeInvalidGrant, "the current password is wrong")
		e.Field = "currentPassword"
		return e
	}
	attempt.succeeded(attempt.pair)
	if err := ValidatePassword("newPassword", next); err != nil {
		return err
	}
	newHash, err := s.passwords.hash(ctx, next)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.store.SetPasswordHash(ctx, id.User.ID, newHash, id.SessionID, s.now()); err != nil {
		return err
	}
	s.auditEvent(ctx, "password changed; other sessions ended", "password_changed", "user_id", id.User.ID)
	return nil
}

// SetPassword replaces the password of user userID and ends all of its
// sessions; it is the administrator's reset, with no current password.
func (s *Service) SetPassword(ctx context.Context, userID, password string) error {
	if err := ValidatePassword("password", password); err != nil {
		return err
	}
	hash, err := s.passwords.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.store.SetPasswordHash(ctx, userID, hash, "", s.now()); err != nil {
		return err
	}
	s.auditEvent(ctx, "password set by an operator; sessions ended", "password_set", "user_id", userID)
	return nil
}

// Sessions returns the live sessions of user userID. Callers other than the
// user need the users:read scope (CodeForbidden).
func (s *Service) Sessions(ctx context.Context, id *Identity, userID string) ([]*Session, error) {
	if id == nil {
		return nil, Errorf(CodeUnauthenticated, "sign in to see sessions")
	}
	if id.User.ID != userID {
		if err := RequireScopes(id, ScopeUsersRead); err != nil {
			return nil, err
		}
	}
	return s.store.Sessions(ctx, userID, s.now())
}

// RevokeSession ends one of id's user's own sessions. Another user's session
// and an unknown one are the same CodeInvalidRequest error.
func (s *Service) RevokeSession(ctx context.Context, id *Identity, sessionID string) error {
	err := s.store.RevokeSession(ctx, id.User.ID, sessionID, s.now())
	if errors.Is(err, ErrNotFound) {
		return fieldError("id", "you have no live session with that id")
	}
	return err
}

// MaxPageSize bounds the first argument of a user listing.
const MaxPageSize = 100

// UserPage is one page of a user listing.
type UserPage struct {
	Users       []*User
	Cursors     []string
	HasNextPage bool
}

// ListUsers returns up to first users after cursor, oldest first. first
// outside 1..MaxPageSize and a foreign cursor are CodeInvalidRequest.
func (s *Service) ListUsers(ctx context.Context, first int, cursor string) (*UserPage, error) {
	if first < 1 || first > MaxPageSize {
		return nil, fieldError("first", "first must be 1 to %d", MaxPageSize)
	}
	users, cursors, err := s.store.ListUsers(ctx, cursor, first+1)
	if err != nil {
		return nil, err
	}
	page := &UserPage{Users: users, Cursors: cursors}
	if len(users) > first {
		page.Users, page.Cursors, page.HasNextPage = users[:first], cursors[:first], true
	}
	return page, nil
}

// SetUserDisabled disables or enables user userID. Disabling ends every
// session of the user at once. An unknown user is CodeInvalidRequest.
func (s *Service) SetUserDisabled(ctx context.Context, userID string, disabled bool) (*User, error) {
	u, err := s.store.SetUserDisabled(ctx, userID, disabled, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil, fieldError("id", "no user with that id")
	}
	if err == nil {
		s.auditEvent(ctx, "user disabled or enabled", "user_disabled_changed",
			"user_id", userID, "disabled", disabled, "by", actor(ctx))
	}
	return u, err
}

// SetUserScopes replaces the scopes granted to user userID, as an operator
// with the database may: any scope. Tokens lose removed scopes at once.
// Malformed scopes and an unknown user are CodeInvalidRequest.
func (s *Service) SetUserScopes(ctx context.Context, userID string, scopes []string) (*User, error) {
	return s.setUserScopes(ctx, userID, scopes, func([]string, []string) error { return nil })
}

// AdminSetUserScopes replaces the scopes granted to user userID as admin,
// who needs ScopeUsersWrite, may add or remove only scopes that their own
// token carries, and may not change their own scopes: else CodeForbidden
// (with RequiredScopes listing what admin lacks). It returns SetUserScopes'
// errors too.
func (s *Service) AdminSetUserScopes(ctx context.Context, admin *Identity, userID string, scopes []string) (*User, error) {
	if err := RequireScopes(admin, ScopeUsersWrite); err != nil {
		return nil, err
	}
	if admin.User.ID == userID {
		return nil, Errorf(CodeForbidden, "you may not change your own scopes")
	}
	return s.setUserScopes(ctx, userID, scopes, func(current, next []string) error {
		changed := append(MissingScopes(current, next), MissingScopes(next, current)...)
		if missing := MissingScopes(admin.Scopes, changed); missing != nil {
			e := Errorf(CodeForbidden, "you may grant or remove only scopes that your token carries; it lacks %q", FormatScope(missing))
			e.RequiredScopes = missing
			return e
		}
		return nil
	})
}

// setUserScopes replaces the scopes of user userID if allowed, called with
// the current and the new scopes in the store's transaction, returns nil.
func (s *Service) setUserScopes(ctx context.Context, userID string, scopes []string, allowed func(current, next []string) error) (*User, error) {
	if err := validateScopes(scopes); err != nil {
		return nil, err
	}
	var unique []string
	for _, sc := range scopes {
		if MissingScopes(unique, []string{sc}) != nil {
			unique = append(unique, sc)
		}
	}
	var before []string
	u, err := s.store.UpdateUserScopes(ctx, userID, func(current []string) ([]string, error) {
		before = current
		return unique, allowed(current, unique)
	})
	if errors.Is(err, ErrNotFound) {
		return nil, fieldError("id", "no user with that id")
	}
	if err == nil {
		s.auditEvent(ctx, "user scopes changed", "user_scopes_changed", "user_id", userID,
			"from", FormatScope(before), "to", FormatScope(u.Scopes), "by", actor(ctx))
	}
	return u, err
}

// UserByUsername returns the user named username, or ErrNotFound.
func (s *Service) UserByUsername(ctx context.Context, username string) (*User, error) {
	if usernameTooLong(username) {
		return nil, ErrNotFound
	}
	u, _, err := s.store.UserByUsername(ctx, UsernameKey(username))
	return u, err
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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
	if err != nil {
		return nil, err
	}
	return rec.Session, nil
}

// accessTokenSession returns the session of access token tok, or nil when
// tok is not a valid access token.
func (s *Service) accessTokenSession(ctx context.Context, tok string) (*Session, error) {
	if s.access == nil {
		return nil, errNoKeys
	}
	claims, err := s.access.verify(tok)
	if err != nil {
		return nil, nil
	}
	sess, _, err := s.store.SessionWithUser(ctx, claims.SessionID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return sess, err
}

// SupportedScopes returns every scope in use: those guarding administration
// and those granted to a user or allowed to a client (RFC 8414
// scopes_supported).
func (s *Service) SupportedScopes(ctx context.Context) ([]string, error) {
	scopes, err := s.store.Scopes(ctx)
	if err != nil {
		return nil, err
	}
	scopes = append(scopes, ScopeUsersRead, ScopeUsersWrite)
	slices.Sort(scopes)
	return slices.Compact(scopes), nil
}
