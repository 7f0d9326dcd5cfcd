package auth

import (
	_ "embed"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
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

// Limits on user input, checked by ValidateUsername and friends.
const (
	MinUsernameLen    = 3  // characters
	MaxUsernameLen    = 64 // characters
	MinPasswordLen    = 8  // characters
	MaxPasswordBytes  = 72 // bcrypt's limit; longer is refused, never truncated
	maxEmailLen       = 254
	maxFullNameLen    = 200 // characters
	maxUserAgentBytes = 512
)

var foldCase = cases.Fold()

// UsernameKey is the form of a username that uniqueness and login compare:
// NFC-normalised and case-folded, so "Alice" and "alice" are one user.
func UsernameKey(username string) string {
	return foldCase.String(norm.NFC.String(username))
}

// ValidateUsername checks the username rules: 3 to 64 characters of valid
// UTF-8, with no spaces, control or invisible formatting characters. It
// returns a CodeInvalidRequest error on field "username".
func ValidateUsername(username string) error {
	if !utf8.ValidString(username) {
		return fieldError("username", "username must be valid UTF-8")
	}
	n := utf8.RuneCountInString(username)
	if n < MinUsernameLen || n > MaxUsernameLen {
		return fieldError("username", "username must be %d to %d characters", MinUsernameLen, MaxUsernameLen)
	}
	for _, r := range username {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fieldError("username", "username must not contain spaces or control characters")
		}
	}
	return nil
}

// ValidatePassword checks the password rules: at least 8 characters, at
// most 72 bytes (bcrypt's limit), and not one of the most common passwords,
// without regard to case. It returns a CodeInvalidRequest error on field.
func ValidatePassword(field, password string) error {
	if !utf8.ValidString(password) {
		return fieldError(field, "password must be valid UTF-8")
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return fieldError(field, "password must be at least %d characters", MinPasswordLen)
	}
	if len(password) > MaxPasswordBytes {
		return fieldError(field, "password must be at most %d bytes (bcrypt's limit); it is %d", MaxPasswordBytes, len(password))
	}
	if _, common := commonPasswords()[strings.ToLower(password)]; common {
		return fieldError(field, "password is one of the %d most common passwords; choose another", len(commonPasswords()))
	}
	return nil
}

//go:embed common-passwords.txt
var commonPasswordsText string

// commonPasswords is the set of lower-cased passwords in
// common-passwords.txt, built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimSuffix(line, "\n")
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
})

// validateProfile checks the optional signup fields.
func validateProfile(email, fullName string) error {
	if email != "" {
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Address != email || len(email) > maxEmailLen {
			return fieldError("email", "email must be a plain address such as name@example.com")
		}
	}
	if fullName != "" {
		if !utf8.ValidString(fullName) || utf8.RuneCountInString(fullName) > maxFullNameLen {
			return fieldError("fullName", "fullName must be at most %d characters of UTF-8", maxFullNameLen)
		}
		if strings.IndexFunc(fullName, unicode.IsControl) >= 0 {
			return fieldError("fullName", "fullName must not contain control characters")
		}
	}
	return nil
}

// validateScopes checks scopes granted to a user.
func validateScopes(scopes []string) error {
	for _, s := range scopes {
		if !ValidScopeToken(s) {
			return fieldError("scopes", "scope %q is not an RFC 6749 scope-token", s)
		}
	}
	return nil
}
