package handshake

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// Protocol constants.
const (
	ProtocolName  = "Noise_IK_25519_ChaChaPoly_BLAKE2s"
	PrologueLabel = "p2pd/1 noise-ik"

	// MaxMessageSize is Noise's limit on one handshake message.
	MaxMessageSize = noise.MaxMsgLen // 65535

	// KeySize is the size of an X25519 key.
	KeySize = 32
	// TagSize is the size of a ChaCha20-Poly1305 authentication tag.
	TagSize = 16

	// Message1Overhead is the size of message 1 without its payload: the
	// ephemeral key, the encrypted static key and the payload's tag.
	Message1Overhead = KeySize + (KeySize + TagSize) + TagSize // 96
	// Message2Overhead is the size of message 2 without its payload: the
	// ephemeral key and the payload's tag.
	Message2Overhead = KeySize + TagSize // 48
)

var (
	// ErrMessageTooLarge reports a message, or a payload that would make a
	// message, longer than MaxMessageSize. It is returned before any crypto.
	ErrMessageTooLarge = errors.New("handshake: message too large")
	// ErrDecrypt reports a message that failed authentication: wrong key,
	// wrong prologue (channel binding), corrupt, truncated or garbage.
	ErrDecrypt = errors.New("handshake: message failed authentication")
	// ErrState reports a method called out of order, or after an error.
	ErrState = errors.New("handshake: method called out of order or after a failure")
	// ErrInvalidKey reports an unusable key in the configuration: a static
	// public key that does not match its private key, or a low-order remote
	// static key.
	ErrInvalidKey = errors.New("handshake: invalid key")
)

// BindingPrologue returns the prologue for a handshake bound to a connection:
// PrologueLabel followed by the connection's exporter keying material.
func BindingPrologue(exporter []byte) []byte {
	p := make([]byte, 0, len(PrologueLabel)+len(exporter))
	p = append(p, PrologueLabel...)
	return append(p, exporter...)
}

// Keypair is an X25519 key pair.
type Keypair struct {
	Private, Public [KeySize]byte
}

// Config configures one side of a handshake.
type Config struct {
	// Static is this node's static key (identity.PrivateKey.NoisePrivate and
	// its public half). Required.
	Static Keypair
	// Prologue must be identical on both sides; use BindingPrologue.
	Prologue []byte
	// Random is the source of the ephemeral key; nil means crypto/rand.
	Random io.Reader
	// Ephemeral, when set, pins the ephemeral key and Random is unused. For
	// test vectors only: reusing an ephemeral key breaks Noise's security.
	Ephemeral *Keypair
	// Suite is the cipher suite; the zero value is the QUIC carrier's.
	Suite Suite
}

// Result is what a completed handshake established.
type Result struct {
	// RemoteStatic is the peer's static X25519 public key.
	RemoteStatic [KeySize]byte
	// RemotePayload is the payload the peer sent (message 1 for the
	// responder, message 2 for the initiator).
	RemotePayload []byte
	// HandshakeHash is Noise's final handshake hash h, equal on both sides:
	// a unique name of this handshake.
	HandshakeHash []byte
	// Secret is known to the two ends alone: derived from both transport
	// keys and HandshakeHash (exportSecret). The TCP carrier names its
	// session to the extra connections that join it with a value derived
	// from it, as the QUIC carrier does with a TLS exporter.
	Secret [32]byte
	// Send and Receive encrypt this side's transport messages and decrypt
	// the peer's. The QUIC carrier does not use them (TLS protects its
	// packets); the TCP carrier encrypts every byte with them.
	Send, Receive *Cipher
}

// newState checks cfg and starts a flynn/noise IK handshake state.
func newState(cfg Config, initiator bool, remoteStatic []byte) (*noise.HandshakeState, error) {
	if _, ok := statics.get(cfg.Static.Private); !ok {
		if err := checkKeypair("static", cfg.Static); err != nil {
			return nil, err
		}
	}
	rng := cfg.Random
	if cfg.Ephemeral != nil {
		if err := checkKeypair("ephemeral", *cfg.Ephemeral); err != nil {
			return nil, err
		}
		// flynn/noise makes its ephemeral key from 32 bytes of Random.
		rng = bytes.NewReader(cfg.Ephemeral.Private[:])
	}
	suite, err := cfg.Suite.cipherSuite()
	if err != nil {
		return nil, err
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   suite,
		Random:        rng,
		Pattern:       noise.HandshakeIK,
		Initiator:     initiator,
		Prologue:      cfg.Prologue,
		StaticKeypair: noise.DHKey{Private: cfg.Static.Private[:], Public: cfg.Static.Public[:]},
		PeerStatic:    remoteStatic,
	})
	if err != nil {
		return nil, fmt.Errorf("handshake: start noise: %w", err)
	}
	return hs, nil
}

// checkKeypair checks that kp.Public is the X25519 public key of kp.Private.
func checkKeypair(which string, kp Keypair) error {
	priv, err := ecdh.X25519().NewPrivateKey(kp.Private[:])
	if err != nil {
		return errorf(ErrInvalidKey, "handshake: %s private key: %v", which, err)
	}
	if !bytes.Equal(priv.PublicKey().Bytes(), kp.Public[:]) {
		return errorf(ErrInvalidKey, "handshake: %s public key %x does not match its private key", which, kp.Public[:])
	}
	if which == "static" {
		statics.put(kp.Private, priv)
	}
	return nil
}

// exportSecret derives Result.Secret from the split's two cipher states
// (initiator to responder first, on both sides) and the handshake hash: an
// HMAC-SHA256 keyed by the two keys, so that it tells nothing of them.
func exportSecret(i2r, r2i *noise.CipherState, h []byte) [32]byte {
	k1, k2 := i2r.UnsafeKey(), r2i.UnsafeKey()
	m := hmac.New(sha256.New, append(k1[:], k2[:]...))
	m.Write([]byte(exportLabel))
	m.Write(h)
	return [32]byte(m.Sum(nil))
}

const exportLabel = "p2pd/1 noise export"

// handshakeHash returns a copy of the final handshake hash.
func handshakeHash(hs *noise.HandshakeState) []byte {
	return bytes.Clone(hs.ChannelBinding())
}

// sentinelError has its own message and matches a sentinel under errors.Is.
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

func errorf(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

// tooLarge is the error for a message or payload over MaxMessageSize.
func tooLarge(what string, n int) error {
	return errorf(ErrMessageTooLarge, "handshake: %s is %d bytes, over the %d-byte Noise message limit", what, n, MaxMessageSize)
}

// decryptFailed is the error for a message that failed to authenticate.
func decryptFailed(msg int, cause error) error {
	return errorf(ErrDecrypt, "handshake: message %d failed authentication (wrong key, wrong channel binding, or corrupt): %v", msg, cause)
}

// tooShort is the error for a message shorter than its fixed part.
func tooShort(msg, n, min int) error {
	return errorf(ErrDecrypt, "handshake: message %d is %d bytes, shorter than the %d-byte minimum", msg, n, min)
}
