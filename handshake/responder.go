package handshake

import (
	"fmt"

	"github.com/flynn/noise"
)

// responderStep is where a Responder is in its state machine.
type responderStep uint8

const (
	respNew  responderStep = iota // may ReadMessage1
	respRead                      // may WriteMessage2
	respDone                      // finished; no method is valid
	respDead                      // failed; no method is valid
)

// Responder is the side that receives message 1 and learns the initiator's
// static key from it. Its zero value is dead; make one with NewResponder. See
// the package doc for its states and the rule that any error kills it.
type Responder struct {
	hs            *noise.HandshakeState
	step          responderStep
	remoteStatic  [KeySize]byte
	remotePayload []byte
}

// NewResponder starts the responding side of a handshake. It fails with
// ErrInvalidKey when cfg.Static is not a matching key pair.
func NewResponder(cfg Config) (*Responder, error) {
	hs, err := newState(cfg, false, nil)
	if err != nil {
		return nil, err
	}
	return &Responder{hs: hs}, nil
}

// ReadMessage1 authenticates message 1 and returns the initiator's static
// X25519 public key and payload. A success proves that the sender holds that
// static key (or this node's own private key) and used the same prologue.
// Message 1 can still be a replay within the same channel binding, so it must
// not trigger anything but the answer.
//
// The caller decides here whether it trusts remoteStatic; if not, it drops
// the Responder and never calls WriteMessage2.
func (r *Responder) ReadMessage1(msg []byte) (remoteStatic [KeySize]byte, payload []byte, err error) {
	if r == nil || r.hs == nil || r.step != respNew {
		return remoteStatic, nil, ErrState
	}
	r.step = respDead // until it succeeds
	switch {
	case len(msg) > MaxMessageSize:
		return remoteStatic, nil, tooLarge("message 1", len(msg))
	case len(msg) < Message1Overhead:
		return remoteStatic, nil, tooShort(1, len(msg), Message1Overhead)
	}
	payload, _, _, err = r.hs.ReadMessage(nil, msg)
	if err != nil {
		return remoteStatic, nil, decryptFailed(1, err)
	}
	rs := r.hs.PeerStatic()
	if len(rs) != KeySize { // cannot happen after a successful IK message 1
		return remoteStatic, nil, errorf(ErrDecrypt, "handshake: message 1 carried a %d-byte static key", len(rs))
	}
	copy(remoteStatic[:], rs)
	r.remoteStatic = remoteStatic
	r.remotePayload = payload
	r.step = respRead
	return remoteStatic, payload, nil
}

// WriteMessage2 returns message 2 carrying payload and completes the
// handshake. The payload may be at most MaxMessageSize - Message2Overhead
// bytes (ErrMessageTooLarge).
func (r *Responder) WriteMessage2(payload []byte) ([]byte, Result, error) {
	if r == nil || r.hs == nil || r.step != respRead {
		return nil, Result{}, ErrState
	}
	r.step = respDead // until it succeeds
	if n := Message2Overhead + len(payload); n > MaxMessageSize {
		return nil, Result{}, tooLarge("message 2 with this payload", n)
	}
	msg, cs1, cs2, err := r.hs.WriteMessage(make([]byte, 0, Message2Overhead+len(payload)), payload)
	if err != nil {
		return nil, Result{}, fmt.Errorf("handshake: write message 2: %w", err)
	}
	r.step = respDone
	res := Result{
		RemoteStatic:  r.remoteStatic,
		RemotePayload: r.remotePayload,
		HandshakeHash: handshakeHash(r.hs),
	}
	res.Secret = exportSecret(cs1, cs2, res.HandshakeHash)
	res.Send, res.Receive = ciphers(cs2, cs1)
	r.hs, r.remotePayload = nil, nil // drop key material
	return msg, res, nil
}
