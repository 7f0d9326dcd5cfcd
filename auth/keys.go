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

// KeyState is where a signing key is in its life, at a moment: pending
// (published, not signing yet), active (signing), retiring (a newer key
// signs; still published and verifying until the last token it signed has
// expired), retired (no token of it can be live), or revoked. A key moves
// only forward through these, by the passing of time, except to revoked.
type KeyState string

// The key states.
const (
	KeyPending  KeyState = "pending"
	KeyActive   KeyState = "active"
	KeyRetiring KeyState = "retiring"
	KeyRetired  KeyState = "retired"
	KeyRevoked  KeyState = "revoked"
)

// KeyInfo is a signing key as `authql key list` shows it: never its
// private part.
type KeyInfo struct {
	ID        string
	Algorithm string
	State     KeyState
	CreatedAt time.Time
	ActiveAt  time.Time
	// RetiresAt is when a retiring key's last token expires.
	RetiresAt *time.Time
	RevokedAt *time.Time
}

// keyStates returns the state of every key at now, with its retirement
// time: a key of alg retires when the next key of alg becomes active, and
// is retired tokenTTL later. Keys of another algorithm are retired.
func keyStates(alg string, keys []*SigningKey, now time.Time, tokenTTL time.Duration) []KeyInfo {
	byActive := slices.Clone(keys)
	slices.SortFunc(byActive, func(a, b *SigningKey) int { return a.ActiveAt.Compare(b.ActiveAt) })
	var out []KeyInfo
	for i, k := range byActive {
		info := KeyInfo{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, ActiveAt: k.ActiveAt, RevokedAt: k.RevokedAt}
		var successor *SigningKey
		for _, next := range byActive[i+1:] {
			if next.Algorithm == alg && next.RevokedAt == nil && !now.Before(next.ActiveAt) {
				successor = next
				break
			}
		}
		switch {
		case k.RevokedAt != nil:
			info.State = KeyRevoked
		case k.Algorithm != alg:
			info.State = KeyRetired
		case now.Before(k.ActiveAt):
			info.State = KeyPending
		case successor == nil:
			info.State = KeyActive
		default:
			retires := successor.ActiveAt.Add(tokenTTL)
			info.RetiresAt = &retires
			info.State = KeyRetiring
			if !now.Before(retires) {
				info.State = KeyRetired
			}
		}
		out = append(out, info)
	}
	return out
}

// KeyStore holds the signing keys.
type KeyStore interface {
	// SigningKeys returns every stored signing key.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// AddSigningKey stores k and reports whether it did. A key that waits
	// to become active (ActiveAt after now) is stored only if no key that
	// is not revoked waits already, so that instances rotating at once
	// leave one; a key active at once (the first, the one that replaces a
	// revoked key, the first of another algorithm) only if no key of its
	// algorithm that is not revoked is active at now, so that instances
	// finding none at once agree on one.
	AddSigningKey(ctx context.Context, k *SigningKey, now time.Time) (bool, error)
	// RevokeSigningKey marks key id revoked at now, or returns ErrNotFound.
	RevokeSigningKey(ctx context.Context, id string, now time.Time) error
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
// now: pending, active and retiring keys are published, active and
// retiring ones verify, the active one signs. Keys of another algorithm
// are left out: a verifier accepts only the configured one. It returns a
// keyring without a signing key when no key of alg is active.
//
// A key stored sealed is opened with sealer (see Unseal).
func buildKeyring(alg string, keys []*SigningKey, now time.Time, tokenTTL time.Duration, sealer *Sealer) (*keyring, error) {
	method, err := methodOf(alg)
	if err != nil {
		return nil, err
	}
	ring := &keyring{method: method, verify: map[string]*ringKey{}}
	states := map[string]KeyState{}
	for _, info := range keyStates(alg, keys, now, tokenTTL) {
		states[info.ID] = info.State
	}
	usable := slices.DeleteFunc(slices.Clone(keys), func(k *SigningKey) bool {
		st := states[k.ID]
		return st != KeyPending && st != KeyActive && st != KeyRetiring
	})
	slices.SortFunc(usable, func(a, b *SigningKey) int { return a.ActiveAt.Compare(b.ActiveAt) })
	for _, k := range usable {
		der, err := Unseal(sealer, "signing key "+k.ID, k.Private)
		if err != nil {
			return nil, err
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
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
