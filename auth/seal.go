package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealer encrypts the server's secrets at rest (private signing keys, the
// refresh token secret) with AES-256-GCM under KEY_ENCRYPTION_KEY, each
// authenticated with its name (a key's kid) as associated data, so that a
// sealed value moved to another name does not open.
type Sealer struct {
	aead cipher.AEAD
}

// sealedPrefix starts every sealed value; a PKCS #8 key starts with 0x30
// and a generated secret is random, so an unsealed value is told apart (a
// random secret starting with these five bytes is a 2^-40 chance, and it
// would then fail to open, loudly).
var sealedPrefix = []byte("AQS1:")

// MinKeyEncryptionKeyLen is the shortest KEY_ENCRYPTION_KEY accepted.
const MinKeyEncryptionKeyLen = 32

// NewSealer returns a Sealer whose AES-256 key is the SHA-256 of key, which
// must be at least MinKeyEncryptionKeyLen bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < MinKeyEncryptionKeyLen {
		return nil, fmt.Errorf("the key encryption key is %d bytes; it must be at least %d", len(key), MinKeyEncryptionKeyLen)
	}
	sum := sha256.Sum256(key)
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain, named name.
func (s *Sealer) Seal(name string, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce) // never returns an error (crypto/rand)
	out := append(bytes.Clone(sealedPrefix), nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(name))
}

// ErrWrongKeyEncryptionKey is returned by Open for a value sealed under
// another key, or under another name.
var ErrWrongKeyEncryptionKey = errors.New("KEY_ENCRYPTION_KEY does not open it: a wrong key, or a value that was tampered with")

// Open decrypts a value Seal made for name.
func (s *Sealer) Open(name string, sealed []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, sealedPrefix)
	if !ok || len(rest) < s.aead.NonceSize() {
		return nil, errors.New("not a sealed value")
	}
	plain, err := s.aead.Open(nil, rest[:s.aead.NonceSize()], rest[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return nil, ErrWrongKeyEncryptionKey
	}
	return plain, nil
}

// IsSealed reports whether a stored value was sealed.
func IsSealed(stored []byte) bool { return bytes.HasPrefix(stored, sealedPrefix) }

// Unseal returns the plain form of a stored value named name: opened with
// sealer when it is sealed, as it is when not. A sealed value without a
// sealer, and one the sealer cannot open, are errors that say what to do:
// never a silent new secret.
func Unseal(sealer *Sealer, name string, stored []byte) ([]byte, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	if sealer == nil {
		return nil, fmt.Errorf("%s is stored encrypted: set KEY_ENCRYPTION_KEY to the key it was stored with", name)
	}
	plain, err := sealer.Open(name, stored)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return plain, nil
}
