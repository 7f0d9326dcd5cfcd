package auth

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"
)

// User is an account. The password hash never leaves the Store except
// through Store.UserByUsername, which returns it separately.
type User struct {
	ID       string
	Username string
	Email    string // empty when not given
	FullName string // empty when not given
	Disabled bool
	// Scopes are the scopes granted to the user; a token carries a subset.
	Scopes    []string
	CreatedAt time.Time
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

// Signup creates a user with no scopes and opens its first session, for
// the first-party client. It is CodeForbidden when signup is closed, and
// returns CreateUser's errors.
//
// Every signup executed counts against the origin's client address, taken
// or not, since "username is taken" tells whether an account exists: past
// SignupAddrLimit it is CodeRateLimited.
func (s *Service) Signup(ctx context.Context, nu NewUser, origin Origin) (*Grant, error) {
	if s.cfg.SignupClosed {
		return nil, Errorf(CodeForbidden, "signup is closed on this server")
	}
	a := s.newAttempt(ctx, s.now())
	wait, err := a.take(s.guards.signup.bucket(origin.ClientAddr))
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		s.securityEvent(ctx, origin.ClientAddr, "signup throttled", "signup_throttled")
		return nil, errThrottled("signups from this address", wait)
	}
	a.failed() // every signup executed uses up the budget
	nu.Scopes = nil
	u, err := s.CreateUser(ctx, nu)
	if err != nil {
		return nil, err
	}
	return s.openSession(ctx, u, 0, []string{}, nil, origin)
}

// ChangePassword replaces the password of id's user after checking the
// current one, and ends every other session of the user. A wrong current
// password is CodeInvalidGrant on field currentPassword, and counts as a
// failed login from id's origin, so a stolen access token cannot guess the
// password faster; a new password that breaks the rules is
// CodeInvalidRequest on field newPassword; without a signed-in user it is
// CodeUnauthenticated.
func (s *Service) ChangePassword(ctx context.Context, id *Identity, current, next string) error {
	if err := requireUser(id); err != nil {
		return err
	}
	attempt, err := s.startLogin(ctx, UsernameKey(id.User.Username), id.Origin.ClientAddr, true)
	if err != nil {
		return err
	}
	wait, err := attempt.take(s.guards.passwordCheck.bucket(id.User.ID))
	if err != nil {
		return err
	}
	if wait > 0 {
		s.securityEvent(ctx, id.Origin.ClientAddr, "password change throttled", "login_throttled", "user_id", id.User.ID)
		return errThrottled("wrong current passwords", wait)
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
		s.securityEvent(ctx, id.Origin.ClientAddr, "password change refused: wrong current password", "login_failed", "user_id", id.User.ID)
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
	change := &PasswordChange{Version: cred.Version, KeepSession: id.SessionID}
	err = s.store.SetPasswordHash(ctx, id.User.ID, newHash, change, s.now())
	if errors.Is(err, ErrCredentialsChanged) || errors.Is(err, ErrNotFound) {
		s.securityEvent(ctx, id.Origin.ClientAddr, "password change refused: the password changed, or the session or user ended, while it was checked",
			"login_raced_credential_change", "user_id", id.User.ID)
		e := Errorf(CodeInvalidGrant, "the current password is wrong")
		e.Field = "currentPassword"
		return e
	}
	if err != nil {
		return err
	}
	s.auditEvent(ctx, id, "password changed; other sessions ended", "password_changed", "user_id", id.User.ID)
	return nil
}

// SetPassword replaces the password of user userID and ends all of its
// sessions: the operator's reset, with no current password.
func (s *Service) SetPassword(ctx context.Context, userID, password string) error {
	if err := ValidatePassword("password", password); err != nil {
		return err
	}
	hash, err := s.passwords.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.store.SetPasswordHash(ctx, userID, hash, nil, s.now()); err != nil {
		return err
	}
	s.auditEvent(ctx, Operator, "password set by an operator; sessions ended", "password_set", "user_id", userID)
	return nil
}

// MaxPageSize bounds the first argument of a user listing.
const MaxPageSize = 100

// UserPage is one page of a user listing.
type UserPage struct {
	Users       []*User
	Cursors     []string
	HasNextPage bool
}

// ListUsers returns, for by (who needs ScopeUsersRead), up to first users
// after cursor, oldest first. first outside 1..MaxPageSize and a foreign
// cursor are CodeInvalidRequest.
func (s *Service) ListUsers(ctx context.Context, by *Identity, first int, cursor string) (*UserPage, error) {
	if err := RequireScopes(by, ScopeUsersRead); err != nil {
		return nil, err
	}
	if first < 1 || first > MaxPageSize {
		return nil, fieldError("first", "first must be 1 to %d", MaxPageSize)
	}
	users, cursors, err := s.store.ListUsers(ctx, cursor, first+1)
	if errors.Is(err, ErrBadCursor) {
		return nil, fieldError("after", "after is not a cursor returned by users")
	}
	if err != nil {
		return nil, err
	}
	page := &UserPage{Users: users, Cursors: cursors}
	if len(users) > first {
		page.Users, page.Cursors, page.HasNextPage = users[:first], cursors[:first], true
	}
	return page, nil
}

// SetUserDisabled disables or enables user userID for by (see
// mayAdminister). Disabling ends every session of the user at once. An
// unknown user is CodeInvalidRequest.
func (s *Service) SetUserDisabled(ctx context.Context, by *Identity, userID string, disabled bool) (*User, error) {
	check, err := s.mayAdminister(by, userID, "disable or enable")
	if err != nil {
		return nil, err
	}
	u, err := s.store.SetUserDisabled(ctx, userID, disabled, s.now(), check)
	if errors.Is(err, ErrNotFound) {
		return nil, fieldError("id", "no user with that id")
	}
	if err == nil {
		s.auditEvent(ctx, by, "user disabled or enabled", "user_disabled_changed", "user_id", userID, "disabled", disabled)
	}
	return u, err
}

// DeleteUser deletes user userID for by (see mayAdminister), with every
// session of the user, so that its tokens stop working at once. An unknown
// user is CodeInvalidRequest.
func (s *Service) DeleteUser(ctx context.Context, by *Identity, userID string) error {
	check, err := s.mayAdminister(by, userID, "delete")
	if err != nil {
		return err
	}
	err = s.store.DeleteUser(ctx, userID, check)
	if errors.Is(err, ErrNotFound) {
		return fieldError("id", "no user with that id")
	}
	if err == nil {
		s.auditEvent(ctx, by, "user deleted; its sessions ended", "user_deleted", "user_id", userID)
	}
	return err
}

// mayAdminister checks that by may act on user userID's account: the
// Operator may; a user needs ScopeUsersWrite, may not act on their own
// account, and may act only on users whose every scope their token
// carries, so that re-enabling a user cannot hand out scopes the
// administrator lacks, nor disabling shut out a stronger administrator.
// Else it is CodeForbidden (RequiredScopes lists what the token lacks).
// The last rule depends on the user as it stands when the change commits:
// it is the returned check, which the store runs in the change's own
// transaction (nil for the Operator), so that a grant committing between
// a check and the change cannot slip through.
func (s *Service) mayAdminister(by *Identity, userID, what string) (check func(*User) error, err error) {
	if err := RequireScopes(by, ScopeUsersWrite); err != nil || by.operator {
		return nil, err
	}
	if by.isUser(userID) {
		return nil, Errorf(CodeForbidden, "you may not %s your own account", what)
	}
	return func(target *User) error {
		if missing := by.missingScopes(target.Scopes); missing != nil {
			e := Errorf(CodeForbidden, "you may %s only users whose scopes your token carries; it lacks %q", what, FormatScope(missing))
			e.RequiredScopes = missing
			return e
		}
		return nil
	}, nil
}

// SetUserScopes replaces the scopes granted to user userID, for by. The
// Operator may grant any scope. A user needs ScopeUsersWrite, may add or
// remove only scopes that their own token carries, and may not change their
// own scopes: else CodeForbidden (with RequiredScopes listing what the
// token lacks). Tokens lose removed scopes at once. Malformed scopes and an
// unknown user are CodeInvalidRequest.
func (s *Service) SetUserScopes(ctx context.Context, by *Identity, userID string, scopes []string) (*User, error) {
	if err := RequireScopes(by, ScopeUsersWrite); err != nil {
		return nil, err
	}
	if by.isUser(userID) {
		return nil, Errorf(CodeForbidden, "you may not change your own scopes")
	}
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
		changed := append(MissingScopes(current, unique), MissingScopes(unique, current)...)
		if missing := by.missingScopes(changed); missing != nil {
			e := Errorf(CodeForbidden, "you may grant or remove only scopes that your token carries; it lacks %q", FormatScope(missing))
			e.RequiredScopes = missing
			return nil, e
		}
		return unique, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, fieldError("id", "no user with that id")
	}
	if err == nil {
		s.auditEvent(ctx, by, "user scopes changed", "user_scopes_changed", "user_id", userID,
			"from", FormatScope(before), "to", FormatScope(u.Scopes))
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
