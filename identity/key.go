package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
)

// SeedSize is the size of an Ed25519 seed, the secret a key file stores.
const SeedSize = ed25519.SeedSize

// PrivateKey is a node's Ed25519 private key. Its zero value holds no key
// (IsZero reports true) and its methods then return zero values.
//
// PrivateKey is deliberately not comparable with ==, and String and GoString
// redact it, so that it cannot leak into logs by accident.
type PrivateKey struct {
	// key is the 64-byte ed25519 private key (seed || public), or nil.
	key ed25519.PrivateKey
}

// GenerateKey makes a new key from 32 bytes read from rand, or from
// crypto/rand when rand is nil.
func GenerateKey(rand io.Reader) (PrivateKey, error) {
	if rand == nil {
		rand = cryptoRand
	}
	seed := make([]byte, SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return PrivateKey{}, fmt.Errorf("identity: generate key: read random seed: %w", err)
	}
	return PrivateKey{key: ed25519.NewKeyFromSeed(seed)}, nil
}

var cryptoRand = rand.Reader

// PrivateKeyFromSeed returns the key whose 32-byte Ed25519 seed is seed.
func PrivateKeyFromSeed(seed []byte) (PrivateKey, error) {
	if len(seed) != SeedSize {
		return PrivateKey{}, fmt.Errorf("identity: ed25519 seed is %d bytes, want %d", len(seed), SeedSize)
	}
	return PrivateKey{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// IsZero reports whether k holds no key.
func (k PrivateKey) IsZero() bool { return len(k.key) == 0 }

// Public returns k's public key, or the zero PublicKey when k is zero.
func (k PrivateKey) Public() PublicKey {
	var p PublicKey
	if !k.IsZero() {
		copy(p[:], k.key[SeedSize:])
	}
	return p
}

// PeerID returns the peer ID of k's public key.
func (k PrivateKey) PeerID() PeerID { return k.Public().PeerID() }

// Ed25519 returns a copy of k as a crypto/ed25519 key (for TLS certificates
// and the libp2p host), or nil when k is zero.
func (k PrivateKey) Ed25519() ed25519.PrivateKey {
	if k.IsZero() {
		return nil
	}
	return append(ed25519.PrivateKey(nil), k.key...)
}

// seed returns k's 32-byte seed (nil when k is zero).
func (k PrivateKey) seed() []byte {
	if k.IsZero() {
		return nil
	}
	return k.key.Seed()
}

// NoisePrivate returns the X25519 private key derived from k: the first 32
// bytes of SHA-512(seed), clamped, exactly as libsodium's
// crypto_sign_ed25519_sk_to_curve25519. Its X25519 public key equals
// k.Public().NoisePublic(). It returns all zeros when k is zero.
func (k PrivateKey) NoisePrivate() [32]byte {
	var x [32]byte
	if k.IsZero() {
		return x
	}
	h := sha512.Sum512(k.seed())
	copy(x[:], h[:32])
	clear(h[:])
	x[0] &= 248
	x[31] &= 127
	x[31] |= 64
	return x
}

// String returns "privkey:REDACTED", never the key.
func (k PrivateKey) String() string { return "privkey:REDACTED" }

// GoString returns a redacted form too, so %#v does not print the key.
func (k PrivateKey) GoString() string { return "identity.PrivateKey{privkey:REDACTED}" }
