package auth

import (
	"slices"
	"strings"
)

// ParseScope parses a scope parameter as RFC 6749 section 3.3 defines it:
// scope-tokens of %x21 / %x23-5B / %x5D-7E separated by single spaces. It
// returns the tokens in order without duplicates; the empty string is no
// scope (nil). A malformed value is a CodeInvalidScope error.
func ParseScope(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > maxScopeLen {
		return nil, Errorf(CodeInvalidScope, "scope is longer than %d bytes", maxScopeLen)
	}
	var scopes []string
	for tok := range strings.SplitSeq(s, " ") {
		if !ValidScopeToken(tok) {
			return nil, Errorf(CodeInvalidScope,
				"scope must be scope-tokens separated by single spaces (RFC 6749 section 3.3)")
		}
		if !slices.Contains(scopes, tok) {
			scopes = append(scopes, tok)
		}
	}
	return scopes, nil
}

// maxScopeLen bounds a scope parameter: far above any real request, far
// below what would make the quadratic de-duplication above matter.
const maxScopeLen = 1024

// ValidScopeToken reports whether tok is an RFC 6749 section 3.3 scope-token.
func ValidScopeToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}

// FormatScope joins scopes into a scope parameter.
func FormatScope(scopes []string) string { return strings.Join(scopes, " ") }

// MissingScopes returns the scopes of want that have lacks, in want's order.
func MissingScopes(have, want []string) []string {
	var missing []string
	for _, s := range want {
		if !slices.Contains(have, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// intersectScopes returns the scopes of a that b also has, in a's order.
func intersectScopes(a, b []string) []string {
	out := make([]string, 0, len(a))
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// The scopes that guard administration.
const (
	ScopeUsersRead  = "users:read"
	ScopeUsersWrite = "users:write"
)

// RequireScopes returns nil when id holds every scope of want,
// CodeUnauthenticated when id is nil, and otherwise CodeForbidden listing
// the missing scopes.
//
// The Operator holds every scope.
func RequireScopes(id *Identity, want ...string) error {
	if err := requireIdentity(id); err != nil {
		return err
	}
	if missing := id.missingScopes(want); missing != nil {
		e := Errorf(CodeForbidden, "this operation needs the scope %q", FormatScope(missing))
		e.RequiredScopes = missing
		return e
	}
	return nil
}

// missingScopes returns the scopes of want that id does not hold: none for
// the Operator.
func (id *Identity) missingScopes(want []string) []string {
	if id.operator {
		return nil
	}
	return MissingScopes(id.Scopes, want)
}
