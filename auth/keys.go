package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The algorithms of generated signing keys (JWT_ALG), as JWS names them.
const (
	AlgES256 = "ES256" // ECDSA on P-256 with SHA-256
	AlgEdDSA = "EdDSA" // Ed25519
	AlgRS256 = "RS256" // RSA PKCS #1 v1.5 with SHA-256, 2048-bit keys
)

// SigningAlgorithms are the algorithms JWT_ALG may name.
var SigningAlgorithms = []string{AlgES256, AlgEdDSA, AlgRS256}

// SigningKey is an asymmetric key pair that signs access tokens. It is
// published (JWKS) from CreatedAt and signs from ActiveAt; of the keys that
// are active, the one that became active last signs, and the others still
// verify the tokens they signed. A revoked key neither signs nor verifies.
type SigningKey struct {
	ID        string // the JWS kid
	Algorithm string
	Private   []byte // PKCS #8 DER; it never leaves the store but to sign
	CreatedAt time.Time
	ActiveAt  time.Time
	RevokedAt *time.Time
}

// KeyStore holds the signing keys.
type KeyStore interface {
	// SigningKeys returns every stored signing key.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// AddSigningKey stores k unless a key that is not revoked becomes
	// active after now (so that instances adding keys at once leave at
	// most one waiting), and reports whether it did.
	AddSigningKey(ctx context.Context, k *SigningKey, now time.Time) (bool, error)
}

// PublicKey is the public half of a signing key, as verifiers get it.
type PublicKey struct {
	ID        string
	Algorithm string
	Key       crypto.PublicKey // *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey
}

// GenerateSigningKey returns a new key pair for alg, published from now and
// signing from activeAt.
func GenerateSigningKey(alg string, now, activeAt time.Time) (*SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("signing algorithm %q is not one of %v", alg, SigningAlgorithms)
	}
	if err != nil {
		return nil, fmt.Errorf("generate a %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode the %s key: %w", alg, err)
	}
	id := make([]byte, 12)
	rand.Read(id) // never returns an error (crypto/rand)
	return &SigningKey{ID: base64.RawURLEncoding.EncodeToString(id), Algorithm: alg, Private: der,
		CreatedAt: now, ActiveAt: activeAt}, nil
}

// ringKey is a key of a keyring: what signs, and what verifies.
type ringKey struct {
	id        string
	signKey   any // []byte for HS256, a crypto.Signer otherwise
	verifyKey any // []byte for HS256, a crypto.PublicKey otherwise
	public    *PublicKey
}

// keyring is the key set of access tokens at one moment: the method they
// are signed with, the key that signs new ones, and by kid the keys that
// verify live ones. An HS256 keyring has one key, without a kid, and
// publishes nothing; an asymmetric one may also hold the HS256 key of an
// earlier version (legacy), which verifies its tokens, without a kid,
// until legacyUntil.
type keyring struct {
	method      jwt.SigningMethod
	signing     *ringKey
	verify      map[string]*ringKey
	publish     []PublicKey
	legacy      *ringKey
	legacyUntil time.Time
}

// hmacKeyring is the keyring of JWT_SECRET.
func hmacKeyring(secret []byte) *keyring {
	k := &ringKey{signKey: secret, verifyKey: secret}
	return &keyring{method: jwt.SigningMethodHS256, signing: k, verify: map[string]*ringKey{"": k}}
}

// methodOf is the jwt signing method of alg.
func methodOf(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case AlgES256:
		return jwt.SigningMethodES256, nil
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA, nil
	case AlgRS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("signing algorithm %q is not one of %v", alg, SigningAlgorithms)
}

// buildKeyring makes the keyring of the stored keys of algorithm alg at
// now. Keys of another algorithm are left out: a verifier accepts only the
// configured one. It returns a keyring without a signing key when no key
// of alg is active.
func buildKeyring(alg string, keys []*SigningKey, now time.Time) (*keyring, error) {
	method, err := methodOf(alg)
	if err != nil {
		return nil, err
	}
	ring := &keyring{method: method, verify: map[string]*ringKey{}}
	usable := slices.DeleteFunc(slices.Clone(keys), func(k *SigningKey) bool {
		return k.Algorithm != alg || k.RevokedAt != nil
	})
	slices.SortFunc(usable, func(a, b *SigningKey) int { return a.ActiveAt.Compare(b.ActiveAt) })
	for _, k := range usable {
		parsed, err := x509.ParsePKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, fmt.Errorf("read signing key %s: %w", k.ID, err)
		}
		signer, ok := parsed.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("signing key %s cannot sign", k.ID)
		}
		pub := &PublicKey{ID: k.ID, Algorithm: alg, Key: signer.Public()}
		rk := &ringKey{id: k.ID, signKey: signer, verifyKey: signer.Public(), public: pub}
		ring.publish = append(ring.publish, *pub)
		if !now.Before(k.ActiveAt) {
			ring.verify[k.ID] = rk
			ring.signing = rk // the last one active signs
		}
	}
	return ring, nil
}
