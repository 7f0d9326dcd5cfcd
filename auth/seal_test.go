package auth_test

import (
	"bytes"
	"errors"
	"testing"

	"authql/auth"
)

// A sealed value opens only with its key and under its name.
func TestSealer(t *testing.T) {
	key := []byte("a key encryption key of 32 bytes!")
	s, err := auth.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("a private key")
	sealed := s.Seal("signing key abc", plain)
	if !auth.IsSealed(sealed) || bytes.Contains(sealed, plain) {
		t.Fatalf("sealed = %q", sealed)
	}
	if got, err := s.Open("signing key abc", sealed); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("signing key other", sealed); !errors.Is(err, auth.ErrWrongKeyEncryptionKey) {
		t.Errorf("under another name: %v", err)
	}
	other, _ := auth.NewSealer([]byte("another key encryption key, 32 b"))
	if _, err := other.Open("signing key abc", sealed); !errors.Is(err, auth.ErrWrongKeyEncryptionKey) {
		t.Errorf("with another key: %v", err)
	}
	if _, err := auth.Unseal(nil, "signing key abc", sealed); err == nil {
		t.Error("a sealed value opened without a key")
	}
	if got, err := auth.Unseal(nil, "x", plain); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("a plain value: %q %v", got, err)
	}
	if _, err := auth.NewSealer([]byte("short")); err == nil {
		t.Error("a 5-byte key accepted")
	}
}
