package auth

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseScope: whatever the input, ParseScope returns valid, distinct
// scope-tokens that format back to a value it parses the same way, or an
// invalid_scope error.
func FuzzParseScope(f *testing.F) {
	for _, seed := range []string{"", "a", "users:read users:write", "a  b", " a", "a\tb", `a"b`, "é", "b a b", "!#[]~"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, err := ParseScope(s)
		if err != nil {
			if ErrorCode(err) != CodeInvalidScope {
				t.Fatalf("ParseScope(%q): error %v is not invalid_scope", s, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, sc := range scopes {
			if !ValidScopeToken(sc) || seen[sc] {
				t.Fatalf("ParseScope(%q) = %q: invalid or repeated token %q", s, scopes, sc)
			}
			seen[sc] = true
		}
		again, err := ParseScope(FormatScope(scopes))
		if err != nil || FormatScope(again) != FormatScope(scopes) {
			t.Fatalf("round trip of %q: %q, %v", scopes, again, err)
		}
	})
}

// FuzzVerifyAccessToken: no input verifies but a token issued with this key
// (the seed, which each fuzzing worker issues afresh), and none panics.
func FuzzVerifyAccessToken(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	tokens := newAccessTokens(hmacKeyring([]byte("0123456789abcdef0123456789abcdef")), "authql", "", time.Hour, func() time.Time { return now })
	issued, err := tokens.issue(&User{ID: "u1", Username: "alice"}, &Session{ID: "s1"}, []string{"users:read"})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(issued, ".")
	for _, seed := range []string{
		issued, "", "a.b.c", "....", parts[0] + "." + parts[1] + ".", parts[0] + "." + parts[1] + "." + parts[2] + "x",
		"eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + ".",
		strings.Repeat("A", 4096),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := tokens.verify(raw)
		if err == nil && (claims.Subject != "u1" || claims.SessionID != "s1" || claims.Scope != "users:read") {
			t.Fatalf("verify accepted %q (claims %+v)", raw, claims)
		}
		if err != nil && ErrorCode(err) != CodeInvalidToken {
			t.Fatalf("verify(%q): error %v is not invalid_token", raw, err)
		}
	})
}
