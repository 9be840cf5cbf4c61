package identity

import (
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// PublicKeySize is the size of a raw Ed25519 public key.
const PublicKeySize = 32

// PublicKey is a raw 32-byte Ed25519 public key, the identity of a node.
type PublicKey [PublicKeySize]byte

// ErrWeakKey reports a public key that cannot be used for Diffie-Hellman: it
// is not a canonical encoding of a point on the curve, or it is a point of
// small order (whose shared secrets an attacker can predict).
var ErrWeakKey = errors.New("identity: weak or invalid public key")

// check returns the decoded point of p, or an error wrapping ErrWeakKey when
// p is not a canonical point encoding or is of small order (8·P is the
// identity).
func (p PublicKey) check() (*edwards25519.Point, error) {
	pt, err := new(edwards25519.Point).SetBytes(p[:])
	if err != nil {
		return nil, errorf(ErrWeakKey, "identity: public key %x is not a valid Ed25519 point encoding", p[:])
	}
	if [32]byte(pt.Bytes()) != [32]byte(p) {
		return nil, errorf(ErrWeakKey, "identity: public key %x is a non-canonical Ed25519 point encoding", p[:])
	}
	if new(edwards25519.Point).MultByCofactor(pt).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, errorf(ErrWeakKey, "identity: public key %x is a small-order Ed25519 point", p[:])
	}
	return pt, nil
}

// NoisePublic returns the X25519 public key of p, the birational map from
// Edwards to Montgomery form (u = (1+y)/(1-y)). It returns an error wrapping
// ErrWeakKey for an invalid or non-canonical encoding or a small-order point.
func (p PublicKey) NoisePublic() ([32]byte, error) {
	pt, err := p.check()
	if err != nil {
		return [32]byte{}, err
	}
	return [32]byte(pt.BytesMontgomery()), nil
}

// PeerID returns the peer ID naming p. It does not validate p; ParsePeerID
// does.
func (p PublicKey) PeerID() PeerID { return PeerID{key: p} }

// String returns p as lower-case hex.
func (p PublicKey) String() string { return fmt.Sprintf("%x", p[:]) }
