package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedSecrets remembers, for a few minutes, the client secrets that
// bcrypt has just accepted, so that a resource server introspecting every
// request it serves costs one bcrypt comparison per few minutes, not one
// per request: those would starve logins of the bcrypt workers. An entry
// is keyed by an HMAC, under a key of this process's, of the client id and
// the secret (no secret is held), and it holds the stored hash it was
// checked against: a client removed, or registered again with another
// secret, no longer matches. Only secrets that passed bcrypt enter it, so
// no one without a secret can grow it; it is bounded all the same.
type verifiedSecrets struct {
	key []byte
	mu  sync.Mutex
	m   map[[sha256.Size]byte]verifiedSecret
}

type verifiedSecret struct {
	hash  []byte
	until time.Time
}

const (
	verifiedSecretTTL  = 5 * time.Minute
	maxVerifiedSecrets = 4096
)

func newVerifiedSecrets() *verifiedSecrets {
	return &verifiedSecrets{key: GenerateSecret(), m: map[[sha256.Size]byte]verifiedSecret{}}
}

func (v *verifiedSecrets) mac(id, secret string) [sha256.Size]byte {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var k [sha256.Size]byte
	copy(k[:], m.Sum(nil))
	return k
}

// has reports whether secret of client id was accepted against hash less
// than verifiedSecretTTL before now.
func (v *verifiedSecrets) has(id, secret string, hash []byte, now time.Time) bool {
	k := v.mac(id, secret)
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[k]
	return ok && now.Before(e.until) && bytes.Equal(e.hash, hash)
}

// add remembers that secret of client id was accepted against hash at now.
func (v *verifiedSecrets) add(id, secret string, hash []byte, now time.Time) {
	k := v.mac(id, secret)
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= maxVerifiedSecrets {
		clear(v.m) // start over: simple, bounded, and only costs bcrypt again
	}
	v.m[k] = verifiedSecret{hash: bytes.Clone(hash), until: now.Add(verifiedSecretTTL)}
}
