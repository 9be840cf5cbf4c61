package handshake

import (
	"crypto/ecdh"
	"fmt"

	"github.com/flynn/noise"
)

// initiatorStep is where an Initiator is in its state machine.
type initiatorStep uint8

const (
	initNew  initiatorStep = iota // may WriteMessage1
	initSent                      // may ReadMessage2
	initDone                      // finished; no method is valid
	initDead                      // failed; no method is valid
)

// Initiator is the side that knows its peer's static key and sends message 1.
// Its zero value is dead; make one with NewInitiator. See the package doc for
// its states and the rule that any error kills it.
type Initiator struct {
	hs           *noise.HandshakeState
	step         initiatorStep
	remoteStatic [KeySize]byte
}

// NewInitiator starts a handshake towards the peer whose static X25519 public
// key is remoteStatic. It fails with ErrInvalidKey when cfg.Static is not a
// matching key pair or remoteStatic is a low-order point.
func NewInitiator(cfg Config, remoteStatic [KeySize]byte) (*Initiator, error) {
	// A low-order remote key makes every DH output zero; refuse it up front
	// rather than at WriteMessage1.
	if isLowOrder(remoteStatic) {
		return nil, errorf(ErrInvalidKey, "handshake: remote static key %x is a low-order point", remoteStatic[:])
	}
	hs, err := newState(cfg, true, remoteStatic[:])
	if err != nil {
		return nil, err
	}
	return &Initiator{hs: hs, remoteStatic: remoteStatic}, nil
}

// isLowOrder reports whether an X25519 public key gives an all-zero shared
// secret, as every point of small order does.
func isLowOrder(pub [KeySize]byte) bool {
	probe, _ := ecdh.X25519().NewPrivateKey(make([]byte, KeySize)) // any scalar works: clamping keeps the cofactor
	pk, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return true
	}
	_, err = probe.ECDH(pk)
	return err != nil
}

// WriteMessage1 returns message 1 carrying payload. The payload may be at
// most MaxMessageSize - Message1Overhead bytes (ErrMessageTooLarge).
func (i *Initiator) WriteMessage1(payload []byte) ([]byte, error) {
	if i == nil || i.hs == nil || i.step != initNew {
		return nil, ErrState
	}
	i.step = initDead // until it succeeds
	if n := Message1Overhead + len(payload); n > MaxMessageSize {
		return nil, tooLarge("message 1 with this payload", n)
	}
	msg, _, _, err := i.hs.WriteMessage(make([]byte, 0, Message1Overhead+len(payload)), payload)
	if err != nil {
		return nil, fmt.Errorf("handshake: write message 1: %w", err)
	}
	i.step = initSent
	return msg, nil
}

// ReadMessage2 authenticates message 2 and completes the handshake. Its
// Result.RemoteStatic is the key given to NewInitiator: message 2 proves the
// responder holds it.
func (i *Initiator) ReadMessage2(msg []byte) (Result, error) {
	if i == nil || i.hs == nil || i.step != initSent {
		return Result{}, ErrState
	}
	i.step = initDead // until it succeeds
	switch {
	case len(msg) > MaxMessageSize:
		return Result{}, tooLarge("message 2", len(msg))
	case len(msg) < Message2Overhead:
		return Result{}, tooShort(2, len(msg), Message2Overhead)
	}
	payload, cs1, cs2, err := i.hs.ReadMessage(nil, msg)
	if err != nil {
		return Result{}, decryptFailed(2, err)
	}
	i.step = initDone
	res := Result{
		RemoteStatic:  i.remoteStatic,
		RemotePayload: payload,
		HandshakeHash: handshakeHash(i.hs),
	}
	res.Secret = exportSecret(cs1, cs2, res.HandshakeHash)
	res.Send, res.Receive = ciphers(cs1, cs2)
	i.hs = nil // drop key material
	return res, nil
}
