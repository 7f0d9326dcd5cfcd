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
	"sync/atomic"
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

	// kid is the key that verified the token ("" for HS256), so that a
	// cached token stops verifying when its key is gone.
	kid string
	// scopes is Scope split, once per token rather than per request.
	scopes []string
}

// accessTokens issues and verifies access tokens with the keys of its
// keyring: HS256 with JWT_SECRET, else the asymmetric signing keys.
type accessTokens struct {
	ring      atomic.Pointer[keyring]
	issuer    string
	audience  string
	ttl       time.Duration
	parser    *jwt.Parser // pinned to the keyring's method
	legacy    *jwt.Parser // pinned to HS256, for an earlier version's tokens
	validator *jwt.Validator
	now       func() time.Time
	// verified holds the claims of tokens whose signature and type have
	// been checked, by token text, so that a token presented again skips
	// the parse and the signature check. The claims checks (expiry,
	// issuer, audience) and the key's still being there run on every use.
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
	size := verifiedBytesPerRaw*len(raw) + verifiedEntryExtra + 16*len(c.scopes) // the split scopes' headers
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.claims == nil || len(v.claims) >= maxVerifiedTokens || v.bytes+size > maxVerifiedBytes {
		v.claims, v.bytes = make(map[string]*accessClaims, 64), 0 // start over: simple and bounded
	}
	v.claims[raw] = c
	v.bytes += size
}

func newAccessTokens(ring *keyring, issuer, audience string, ttl time.Duration, now func() time.Time) *accessTokens {
	opts := func(method jwt.SigningMethod) []jwt.ParserOption {
		o := []jwt.ParserOption{
			// Pin the algorithm: alg "none", HS256 signed with a public
			// key as its secret, and every other algorithm are refused
			// before a key is used.
			jwt.WithValidMethods([]string{method.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		}
		if audience != "" {
			o = append(o, jwt.WithAudience(audience))
		}
		return o
	}
	t := &accessTokens{
		issuer:    issuer,
		audience:  audience,
		ttl:       ttl,
		parser:    jwt.NewParser(opts(ring.method)...),
		legacy:    jwt.NewParser(opts(jwt.SigningMethodHS256)...),
		validator: jwt.NewValidator(opts(ring.method)...),
		now:       now,
	}
	t.ring.Store(ring)
	return t
}

// errNoSigningKey is the fault of a keyring that has no active key.
var errNoSigningKey = errors.New("no signing key is active")

// issue signs an access token for the session s of user u carrying scopes,
// with the keyring's signing key and its kid.
func (t *accessTokens) issue(u *User, s *Session, scopes []string) (string, error) {
	ring := t.ring.Load()
	if ring.signing == nil {
		return "", errNoSigningKey
	}
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
	token := jwt.NewWithClaims(ring.method, claims)
	token.Header["typ"] = accessTokenType
	if ring.signing.id != "" {
		token.Header["kid"] = ring.signing.id
	}
	signed, err := token.SignedString(ring.signing.signKey)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return signed, nil
}

// forbiddenHeaders name keys a token would bring along: a verifier that
// followed them would trust whoever signed the token. authql verifies with
// its own keys only, and refuses a token that carries them at all.
var forbiddenHeaders = []string{"jku", "jwk", "x5u", "x5c"}

// verify checks raw's signature, type, issuer, audience and lifetime and
// returns its claims. The signature is checked with the keyring's method
// and the key its kid names; a token of an earlier version (HS256, no kid)
// is checked with that version's key while the keyring keeps it. Every
// failure is a CodeInvalidToken error whose message may go into a
// WWW-Authenticate header.
func (t *accessTokens) verify(raw string) (*accessClaims, error) {
	ring := t.ring.Load()
	if c := t.verified.get(raw); c != nil && ring.holds(c.kid, t.now()) {
		if err := t.validator.Validate(c); err != nil {
			return nil, &Error{Code: CodeInvalidToken, Message: describeTokenError(err), Err: err}
		}
		return c, nil
	}
	var claims accessClaims
	keyOf := func(keys map[string]*ringKey) jwt.Keyfunc {
		return func(token *jwt.Token) (any, error) {
			typ, _ := token.Header["typ"].(string)
			// typ is case-insensitive and may carry the "application/"
			// prefix (RFC 7515 section 4.1.9).
			if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), accessTokenType) {
				return nil, errWrongTokenType
			}
			for _, h := range forbiddenHeaders {
				if _, ok := token.Header[h]; ok {
					return nil, errForeignKey
				}
			}
			kid, _ := token.Header["kid"].(string)
			k, ok := keys[kid]
			if !ok {
				return nil, errUnknownKey
			}
			claims.kid = kid
			return k.verifyKey, nil
		}
	}
	_, err := t.parser.ParseWithClaims(raw, &claims, keyOf(ring.verify))
	if err != nil && ring.legacy != nil && t.now().Before(ring.legacyUntil) {
		claims = accessClaims{}
		if _, legacyErr := t.legacy.ParseWithClaims(raw, &claims, keyOf(map[string]*ringKey{"": ring.legacy})); legacyErr == nil {
			err = nil
			claims.kid = legacyKID
		}
	}
	if err != nil {
		return nil, &Error{Code: CodeInvalidToken, Message: describeTokenError(err), Err: err}
	}
	if claims.Subject == "" || claims.SessionID == "" {
		return nil, Errorf(CodeInvalidToken, "the access token lacks sub or sid")
	}
	claims.scopes = strings.Fields(claims.Scope)
	t.verified.put(raw, &claims)
	return &claims, nil
}

// legacyKID marks, in the verified-token cache, a token that an earlier
// version's HS256 key verified.
const legacyKID = "\x00legacy"

// holds reports whether the key that verified a cached token is still in
// the keyring at now.
func (r *keyring) holds(kid string, now time.Time) bool {
	if kid == legacyKID {
		return r.legacy != nil && now.Before(r.legacyUntil)
	}
	_, ok := r.verify[kid]
	return ok
}

var (
	errUnknownKey = errors.New("the token's kid names no key of this server")
	errForeignKey = errors.New("the token names a key of its own (jku, jwk, x5u or x5c)")
)

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
