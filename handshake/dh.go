package handshake

import (
	"crypto/ecdh"
	"fmt"
	"io"
	"sync"

	"github.com/flynn/noise"
)

// x25519 is Noise's 25519 DH over crypto/ecdh that parses each private key
// once. flynn/noise's DH25519 goes through golang.org/x/crypto's X25519,
// which recomputes the private key's public key on every call: each DH
// then costs two scalar multiplications instead of one. It behaves the
// same as DH25519 (the vectors check it): a generated private key is 32
// bytes read from the random source, and a DH whose result is all zeros (a
// low-order public key) is an error.
//
// One x25519 serves one handshake; it is not safe for concurrent use.
type x25519 struct {
	ephemeral map[[KeySize]byte]*ecdh.PrivateKey
}

func newX25519() *x25519 { return &x25519{ephemeral: make(map[[KeySize]byte]*ecdh.PrivateKey, 1)} }

func (d *x25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	var priv [KeySize]byte
	if _, err := io.ReadFull(rng, priv[:]); err != nil {
		return noise.DHKey{}, err
	}
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return noise.DHKey{}, err
	}
	d.ephemeral[priv] = k
	return noise.DHKey{Private: priv[:], Public: k.PublicKey().Bytes()}, nil
}

func (d *x25519) DH(privkey, pubkey []byte) ([]byte, error) {
	if len(privkey) != KeySize {
		return nil, fmt.Errorf("handshake: x25519 private key of %d bytes", len(privkey))
	}
	var kb [KeySize]byte
	copy(kb[:], privkey)
	k, ok := d.ephemeral[kb]
	if !ok {
		if k, ok = statics.get(kb); !ok {
			var err error
			if k, err = ecdh.X25519().NewPrivateKey(privkey); err != nil {
				return nil, err
			}
		}
	}
	pub, err := ecdh.X25519().NewPublicKey(pubkey)
	if err != nil {
		return nil, err
	}
	return k.ECDH(pub)
}

func (d *x25519) DHLen() int     { return KeySize }
func (d *x25519) DHName() string { return "25519" }

// maxStatics bounds the cache of parsed static keys: a node has one.
const maxStatics = 8

// staticCache holds parsed, checked static private keys, so that a node
// does not redo the check and the parse on every handshake.
type staticCache struct {
	mu   sync.Mutex // guards keys
	keys map[[KeySize]byte]*ecdh.PrivateKey
}

var statics = &staticCache{keys: make(map[[KeySize]byte]*ecdh.PrivateKey)}

func (c *staticCache) get(priv [KeySize]byte) (*ecdh.PrivateKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[priv]
	return k, ok
}

func (c *staticCache) put(priv [KeySize]byte, k *ecdh.PrivateKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) < maxStatics {
		c.keys[priv] = k
	}
}
