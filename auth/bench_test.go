package auth

import (
	"testing"
	"time"
)

// BenchmarkVerifyAccessToken is the JWT check every authenticated request
// makes before its database read.
func BenchmarkVerifyAccessToken(b *testing.B) {
	now := time.Now()
	tokens := newAccessTokens(hmacKeyring([]byte("0123456789abcdef0123456789abcdef")), "authql", "", time.Hour, func() time.Time { return now })
	tok, err := tokens.issue(&User{ID: "u1", Username: "alice"}, &Session{ID: "s1"}, []string{"users:read"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
