package identity

import (
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"testing"

	"filippo.io/edwards25519"
)

// TestNoiseKeysAgree checks the derivation both ways for random keys:
// X25519(NoisePrivate, basepoint) must equal NoisePublic of the public key,
// and two nodes must reach the same shared secret from each other's peer ID.
func TestNoiseKeysAgree(t *testing.T) {
	x := ecdh.X25519()
	for i := range 100 {
		a, b := mustGenerate(t, nil), mustGenerate(t, nil)
		aPriv := a.NoisePrivate()
		ecdhA, err := x.NewPrivateKey(aPriv[:])
		if err != nil {
			t.Fatal(err)
		}
		aPub, err := a.Public().NoisePublic()
		if err != nil {
			t.Fatalf("key %d: NoisePublic: %v", i, err)
		}
		if got := ecdhA.PublicKey().Bytes(); string(got) != string(aPub[:]) {
			t.Fatalf("key %d: X25519(NoisePrivate, basepoint) = %x, NoisePublic = %x", i, got, aPub[:])
		}

		bPriv := b.NoisePrivate()
		ecdhB, _ := x.NewPrivateKey(bPriv[:])
		bPub, err := b.PeerID().PublicKey().NoisePublic()
		if err != nil {
			t.Fatal(err)
		}
		peerB, _ := x.NewPublicKey(bPub[:])
		peerA, _ := x.NewPublicKey(aPub[:])
		s1, err1 := ecdhA.ECDH(peerB)
		s2, err2 := ecdhB.ECDH(peerA)
		if err1 != nil || err2 != nil || string(s1) != string(s2) {
			t.Fatalf("key %d: shared secrets differ (%v, %v)", i, err1, err2)
		}
		// Clamping: low 3 bits clear, bit 255 clear, bit 254 set.
		if aPriv[0]&7 != 0 || aPriv[31]&0xc0 != 0x40 {
			t.Fatalf("key %d: NoisePrivate %x is not clamped", i, aPriv[:])
		}
	}
}

// smallOrderPoints are the canonical encodings of the 8 points of order
// dividing 8 on edwards25519 (identity, order 2, two of order 4, four of
// order 8), as listed in "Taming the many EdDSAs" (Chalkias et al., 2020).
var smallOrderPoints = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"0000000000000000000000000000000000000000000000000000000000000080", // order 4
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
}

func TestNoisePublicRejectsSmallOrder(t *testing.T) {
	seen := map[PublicKey]bool{}
	for _, h := range smallOrderPoints {
		var p PublicKey
		hex.Decode(p[:], []byte(h))
		seen[p] = true
		// The list itself must be right: each decodes to a point with 8·P = identity.
		pt, err := new(edwards25519.Point).SetBytes(p[:])
		if err != nil {
			t.Fatalf("%s: not a point: %v", h, err)
		}
		if new(edwards25519.Point).MultByCofactor(pt).Equal(edwards25519.NewIdentityPoint()) != 1 {
			t.Fatalf("%s: not of small order; the test list is wrong", h)
		}
		if _, err := p.NoisePublic(); !errors.Is(err, ErrWeakKey) {
			t.Errorf("NoisePublic(%s) err = %v, want ErrWeakKey", h, err)
		}
		text := encodeBaseX(base58Alphabet, p.PeerID().multihash()) // String() is "" for the all-zero key
		if _, err := ParsePeerID(text); !errors.Is(err, ErrWeakKey) || !errors.Is(err, ErrInvalidPeerID) {
			t.Errorf("ParsePeerID(peer id of %s) err = %v, want ErrInvalidPeerID and ErrWeakKey", h, err)
		}
	}
	if len(seen) != 8 {
		t.Fatalf("%d distinct small-order points, want 8", len(seen))
	}
}

func TestNoisePublicRejectsInvalidEncodings(t *testing.T) {
	// y = 2^255 - 19 + d for small d is a non-canonical encoding of y = d;
	// y values whose x² is not a square are not on the curve at all.
	var nonCanonical, offCurve int
	for d := range 19 {
		var p PublicKey
		p[0] = byte(d)
		if _, err := new(edwards25519.Point).SetBytes(p[:]); err != nil {
			offCurve++
			if _, err := p.NoisePublic(); !errors.Is(err, ErrWeakKey) {
				t.Errorf("NoisePublic(y=%d, not on the curve) err = %v, want ErrWeakKey", d, err)
			}
			continue
		}
		// q = 2^255 - 19 + d, little-endian: ed+d ff … ff 7f (no carry since d < 19).
		var q PublicKey
		q[0] = byte(0xed + d)
		for i := 1; i < 31; i++ {
			q[i] = 0xff
		}
		q[31] = 0x7f
		if _, err := new(edwards25519.Point).SetBytes(q[:]); err != nil {
			continue
		}
		nonCanonical++
		if _, err := q.NoisePublic(); !errors.Is(err, ErrWeakKey) {
			t.Errorf("NoisePublic(non-canonical %x) err = %v, want ErrWeakKey", q[:], err)
		}
	}
	if nonCanonical == 0 || offCurve == 0 {
		t.Fatalf("exercised %d non-canonical and %d off-curve encodings, want some of each", nonCanonical, offCurve)
	}
}
