package interop

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"

	"github.com/p2pd/p2pd/identity"
)

// TestIdentityPeerIDMatchesLibp2p cross-checks identity's own peer ID codec
// against go-libp2p for random keys: the base58 and base36 text forms must be
// byte-identical, and each side must parse the other's output.
func TestIdentityPeerIDMatchesLibp2p(t *testing.T) {
	base36 := multibase.MustNewEncoder(multibase.Base36)
	for i := range 50 {
		k, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		lpriv, err := crypto.UnmarshalEd25519PrivateKey(k.Ed25519())
		if err != nil {
			t.Fatal(err)
		}
		lid, err := peer.IDFromPrivateKey(lpriv)
		if err != nil {
			t.Fatal(err)
		}
		id := k.PeerID()

		if got, want := id.String(), lid.String(); got != want {
			t.Fatalf("key %d: String() = %s, libp2p peer.ID.String() = %s", i, got, want)
		}
		if got, want := id.Base36(), peer.ToCid(lid).Encode(base36); got != want {
			t.Fatalf("key %d: Base36() = %s, libp2p peer.ToCid(id).Encode(base36) = %s", i, got, want)
		}
		if n := len(id.Base36()); n != 62 {
			t.Fatalf("key %d: Base36() is %d characters, want 62 (a DNS label)", i, n)
		}

		// libp2p parses both of our forms, and the base36 one after upper-casing too.
		for _, s := range []string{id.String(), id.Base36(), strings.ToUpper(id.Base36())} {
			back, err := peer.Decode(s)
			if err != nil {
				t.Fatalf("key %d: peer.Decode(%q): %v", i, s, err)
			}
			if back != lid {
				t.Fatalf("key %d: peer.Decode(%q) = %s, want %s", i, s, back, lid)
			}
		}

		// We parse libp2p's forms: base58, and the CID in base36 (both cases).
		cid36 := peer.ToCid(lid).Encode(base36)
		for _, s := range []string{lid.String(), cid36, strings.ToUpper(cid36)} {
			back, err := identity.ParsePeerID(s)
			if err != nil {
				t.Fatalf("key %d: ParsePeerID(%q): %v", i, s, err)
			}
			if back != id {
				t.Fatalf("key %d: ParsePeerID(%q) = %s, want %s", i, s, back, id)
			}
		}

		// The public key libp2p extracts from the peer ID is ours.
		lpub, err := lid.ExtractPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := lpub.Raw()
		if err != nil {
			t.Fatal(err)
		}
		if pub := id.PublicKey(); string(raw) != string(pub[:]) || !ed25519.PublicKey(raw).Equal(k.Ed25519().Public()) {
			t.Fatalf("key %d: libp2p extracted key %x, want %x", i, raw, pub[:])
		}
	}
}

// TestIdentityRejectsNonEd25519PeerIDs checks that ParsePeerID refuses valid
// libp2p peer IDs of other key types, which p2pd cannot use for Noise.
func TestIdentityRejectsNonEd25519PeerIDs(t *testing.T) {
	_, pub, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lid, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cid36 := peer.ToCid(lid).Encode(multibase.MustNewEncoder(multibase.Base36))
	for _, s := range []string{lid.String(), cid36} {
		if _, err := identity.ParsePeerID(s); err == nil {
			t.Errorf("ParsePeerID(%q) (secp256k1 peer id) succeeded, want an error", s)
		}
	}
}
