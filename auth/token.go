package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest HS256 key accepted: 256 bits, the size of the
// hash output (RFC 7518 section 3.2).
const MinSecretLen = 32

// accessTokenType is the JWT typ header of access tokens (RFC 9068 section
// 2.1). Tokens of any other type are refused, so that no other JWT signed
// with the same key can pass as an access token.
const accessTokenType = "at+jwt"

// accessClaims are the claims of an access token (RFC 9068 section 2.2).
type accessClaims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	Scope     string `json:"scope"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username"`
}

// accessTokens issues and verifies HS256 access tokens.
type accessTokens struct {
	key       []byte
	issuer    string
	audience  string
	ttl       time.Duration
	parser    *jwt.Parser
	validator *jwt.Validator
	now       func() time.Time
	// verified holds the claims of tokens whose signature and type have
	// been checked, by token text, so that a token presented again skips
	// the parse and the HMAC. The claims checks (expiry, issuer, audience)
	// still run on every use.
	verified verifiedTokens
}

// verifiedTokens is a map from token text to its checked claims, bounded
// in entries and in bytes.
type verifiedTokens struct {
	mu     sync.RWMutex
	claims map[string]*accessClaims
	bytes  int
}

// The cache's bounds: a token and its claims take about twice the token's
// length and some fixed overhead.
const (
	maxVerifiedTokens   = 4096
	maxVerifiedBytes    = 4 << 20
	verifiedEntryExtra  = 256
	verifiedBytesPerRaw = 2
)

func (v *verifiedTokens) get(raw string) *accessClaims {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.claims[raw]
}

func (v *verifiedTokens) put(raw string, c *accessClaims) {
	size := verifiedBytesPerRaw*len(raw) + verifiedEntryExtra
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.claims == nil || len(v.claims) >= maxVerifiedTokens || v.bytes+size > maxVerifiedBytes {
		v.claims, v.bytes = make(map[string]*accessClaims, 64), 0 // start over: simple and bounded
	}
	v.claims[raw] = c
	v.bytes += size
}

func newAccessTokens(key []byte, issuer, audience string, ttl time.Duration, now func() time.Time) *accessTokens {
	opts := []jwt.ParserOption{
		// Pin the algorithm: alg "none", RS256 with the key as a public key,
		// and every other algorithm are refused before the key is used.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	if audience != "" {
		opts = append(opts, jwt.WithAudience(audience))
	}
	return &accessTokens{
		key:       key,
		issuer:    issuer,
		audience:  audience,
		ttl:       ttl,
		parser:    jwt.NewParser(opts...),
		validator: jwt.NewValidator(opts...),
		now:       now,
	}
}

// issue signs an access token for the session s of user u carrying scopes.
func (t *accessTokens) issue(u *User, s *Session, scopes []string) (string, error) {
	now := t.now()
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   u.ID,
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        randomHex(16),
		},
		SessionID: s.ID,
		Scope:     FormatScope(scopes),
		ClientID:  s.ClientID,
		Username:  u.Username,
	}
	if t.audience != "" {
		claims.Audience = jwt.ClaimStrings{t.audience}
	}
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	token.Header["typ"] = accessTokenType
	signed, err := token.SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return signed, nil
}

// verify checks raw's signature, type, issuer, audience and lifetime and
// returns its claims. Every failure is a CodeInvalidToken error whose message
// may go into a WWW-Authenticate header.
func (t *accessTokens) verify(raw string) (*accessClaims, error) {
	if c := t.verified.get(raw); c != nil {
		if err := t.validator.Validate(c); err != nil {
			return nil, &Error{Code: CodeInvalidToken, Message: describeTokenError(err), Err: err}
		}
		return c, nil
	}
	var claims accessClaims
	_, err := t.parser.ParseWithClaims(raw, &claims, func(token *jwt.Token) (any, error) {
		typ, _ := token.Header["typ"].(string)
		// typ is case-insensitive and may carry the "application/" prefix
		// (RFC 7515 section 4.1.9).
		if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), accessTokenType) {
			return nil, errWrongTokenType
		}
		return t.key, nil
	})
	if err != nil {
		return nil, &Error{Code: CodeInvalidToken, Message: describeTokenError(err), Err: err}
	}
	if claims.Subject == "" || claims.SessionID == "" {
		return nil, Errorf(CodeInvalidToken, "the access token lacks sub or sid")
	}
	t.verified.put(raw, &claims)
	return &claims, nil
}

var errWrongTokenType = errors.New("token typ is not at+jwt")

// describeTokenError turns a parse failure into a short message for clients.
func describeTokenError(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the access token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the access token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the access token has the wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the access token has the wrong audience"
	case errors.Is(err, errWrongTokenType):
		return "the token is not an access token (typ at+jwt)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the access token signature is invalid"
	default:
		return "the access token is malformed"
	}
}

// refreshTokenBytes is the entropy of a refresh token: 256 bits.
const refreshTokenBytes = 32

// refreshTokenLen is the length of a refresh token's text.
var refreshTokenLen = base64.RawURLEncoding.EncodedLen(refreshTokenBytes)

// refreshTokens makes the opaque refresh tokens. Only their SHA-256 hashes
// are stored. The child that replaces a token on rotation is derived from it
// with an HMAC, so a replay within the grace window gets the same child
// without the child ever being stored in plain text. The HMAC key comes from
// a secret of its own, never the access-token signing key: whoever can sign
// access tokens must not also be able to walk a session's refresh tokens
// from an old one to its current one.
type refreshTokens struct {
	deriveKey []byte
}

func newRefreshTokens(secret []byte) *refreshTokens {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("authql refresh token rotation"))
	return &refreshTokens{deriveKey: mac.Sum(nil)}
}

// generate returns a new random refresh token.
func (*refreshTokens) generate() string {
	b := make([]byte, refreshTokenBytes)
	rand.Read(b) // never returns an error (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// child returns the token that replaces parent when it is rotated.
func (r *refreshTokens) child(parent string) string {
	mac := hmac.New(sha256.New, r.deriveKey)
	mac.Write([]byte(parent))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// wellFormed reports whether tok could be a refresh token, so that garbage
// never reaches the database.
func (*refreshTokens) wellFormed(tok string) bool {
	if len(tok) != refreshTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil
}

// HashToken returns the form in which a refresh token is stored.
func HashToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (crypto/rand)
	return hex.EncodeToString(b)
}

// NewID returns a random identifier for a user or a session.
func NewID() string { return randomHex(16) }

// GenerateSecret returns a new random 256-bit key, for HS256 or for
// deriving refresh tokens.
func GenerateSecret() []byte {
	b := make([]byte, MinSecretLen)
	rand.Read(b) // never returns an error (crypto/rand)
	return b
}
