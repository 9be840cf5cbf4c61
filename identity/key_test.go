package identity

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Known answers, computed independently: public keys and X25519 keys with
// libsodium (crypto_sign_seed_keypair, crypto_sign_ed25519_sk_to_curve25519,
// crypto_sign_ed25519_pk_to_curve25519), peer IDs with go-libp2p
// (peer.IDFromPrivateKey, peer.ToCid(id).Encode(multibase base36)).
var knownKeys = []struct {
	seedByte                    byte // the seed is 32 copies of it
	public, noisePriv, noisePub string
	peerID, base36              string
}{
	{
		seedByte:  0x01,
		public:    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
		noisePriv: "58e86efb75fa4e2c410f46e16de9f6acae1a1703528651b69bc176c088bef36e",
		noisePub:  "1b1b58dd50ea14b60da17b790cd02754d970c9bab864ebb3c0f3016fe51d3f57",
		peerID:    "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
		base36:    "k51qzi5uqu5djmw2yvf8kk5cdjc1ddc00o4d5sjwi6f79xzcay9j3gkddw5uu4",
	},
	{
		seedByte:  0x42,
		public:    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12",
		noisePriv: "90e7595fc89e52fdfddce9c6a43d74dbf6047025ee0462d2d172e8b6a2841d6e",
		noisePub:  "cc4f2cdb695dd766f34118eb67b98652fed1d8bc49c330b119bbfa8a64989378",
		peerID:    "12D3KooWC4T1AXU2s2YBgGJ2FeaYVtsKoHZWJeubnWe9SnuSE7Zb",
		base36:    "k51qzi5uqu5dh0hmqwzu47an7qt7e1h5lyer5kjjntgl9e4qwb07kctxsovmdu",
	},
}

func TestKnownAnswers(t *testing.T) {
	for _, kk := range knownKeys {
		seed := bytes.Repeat([]byte{kk.seedByte}, SeedSize)
		for name, k := range map[string]PrivateKey{
			"PrivateKeyFromSeed": mustFromSeed(t, seed),
			"GenerateKey":        mustGenerate(t, bytes.NewReader(seed)),
		} {
			pub := k.Public()
			if got := hex.EncodeToString(pub[:]); got != kk.public {
				t.Errorf("seed %02x via %s: Public() = %s, want %s", kk.seedByte, name, got, kk.public)
			}
			np := k.NoisePrivate()
			if got := hex.EncodeToString(np[:]); got != kk.noisePriv {
				t.Errorf("seed %02x via %s: NoisePrivate() = %s, want %s", kk.seedByte, name, got, kk.noisePriv)
			}
			npub, err := pub.NoisePublic()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(npub[:]); got != kk.noisePub {
				t.Errorf("seed %02x via %s: NoisePublic() = %s, want %s", kk.seedByte, name, got, kk.noisePub)
			}
			id := k.PeerID()
			if got := id.String(); got != kk.peerID {
				t.Errorf("seed %02x via %s: PeerID().String() = %s, want %s", kk.seedByte, name, got, kk.peerID)
			}
			if got := id.Base36(); got != kk.base36 {
				t.Errorf("seed %02x via %s: PeerID().Base36() = %s, want %s", kk.seedByte, name, got, kk.base36)
			}
			if got := id.ShortString(); got != kk.peerID[len(kk.peerID)-6:] {
				t.Errorf("seed %02x via %s: ShortString() = %s", kk.seedByte, name, got)
			}
			if id.PublicKey() != pub || pub.PeerID() != id {
				t.Errorf("seed %02x via %s: PeerID and PublicKey disagree", kk.seedByte, name)
			}
			if !bytes.Equal(k.Ed25519().Seed(), seed) {
				t.Errorf("seed %02x via %s: Ed25519().Seed() = %x", kk.seedByte, name, k.Ed25519().Seed())
			}
		}
	}
}

func mustFromSeed(t *testing.T, seed []byte) PrivateKey {
	t.Helper()
	k, err := PrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustGenerate(t *testing.T, r interface{ Read([]byte) (int, error) }) PrivateKey {
	t.Helper()
	k, err := GenerateKey(r)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGenerateKey(t *testing.T) {
	a, b := mustGenerate(t, nil), mustGenerate(t, nil)
	if a.IsZero() || b.IsZero() {
		t.Fatal("GenerateKey(nil) returned a zero key")
	}
	if a.PeerID() == b.PeerID() {
		t.Fatal("two GenerateKey(nil) calls returned the same key")
	}
	_, err := GenerateKey(bytes.NewReader(make([]byte, SeedSize-1)))
	if err == nil || !strings.HasPrefix(err.Error(), "identity: ") {
		t.Fatalf("GenerateKey with a short random source: err = %v, want an identity error", err)
	}
}

func TestPrivateKeyFromSeedLength(t *testing.T) {
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := PrivateKeyFromSeed(make([]byte, n)); err == nil {
			t.Errorf("PrivateKeyFromSeed(%d bytes) succeeded, want an error", n)
		}
	}
}

func TestPrivateKeyRedacted(t *testing.T) {
	k := mustFromSeed(t, bytes.Repeat([]byte{0x01}, SeedSize))
	seedHex := hex.EncodeToString(k.Ed25519().Seed())
	secrets := []string{seedHex, hex.EncodeToString(k.Ed25519()), fmt.Sprint(k.Ed25519().Seed()[:4])}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		out := fmt.Sprintf(format, k)
		if format == "%x" || format == "%X" { // hex of the String() text
			b, _ := hex.DecodeString(out)
			out = string(b)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("Sprintf(%q, key) = %q, want it redacted", format, out)
		}
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(out), strings.ToLower(s)) {
				t.Errorf("Sprintf(%q, key) = %q leaks key material", format, out)
			}
		}
	}
	if got := k.String(); got != "privkey:REDACTED" {
		t.Errorf("String() = %q, want privkey:REDACTED", got)
	}
	// Also redacted when nested in a struct printed with %+v.
	out := fmt.Sprintf("%+v", struct{ K PrivateKey }{k})
	if strings.Contains(out, seedHex) || !strings.Contains(out, "REDACTED") {
		t.Errorf("nested %%+v = %q", out)
	}
}

func TestPrivateKeyNotComparable(t *testing.T) {
	if reflect.TypeOf(PrivateKey{}).Comparable() {
		t.Fatal("PrivateKey is comparable with ==; it must not be")
	}
	if !reflect.TypeOf(PeerID{}).Comparable() {
		t.Fatal("PeerID is not comparable; it must be usable as a map key")
	}
}

func TestZeroPrivateKey(t *testing.T) {
	var k PrivateKey
	if !k.IsZero() {
		t.Fatal("zero PrivateKey: IsZero() = false")
	}
	if k.Public() != (PublicKey{}) || !k.PeerID().IsZero() || k.Ed25519() != nil || k.NoisePrivate() != [32]byte{} {
		t.Fatal("zero PrivateKey: methods returned non-zero values")
	}
	if mustGenerate(t, nil).IsZero() {
		t.Fatal("generated key: IsZero() = true")
	}
}

func TestEd25519ReturnsCopy(t *testing.T) {
	k := mustFromSeed(t, bytes.Repeat([]byte{0x01}, SeedSize))
	e := k.Ed25519()
	clear(e)
	if !bytes.Equal(k.Ed25519().Seed(), bytes.Repeat([]byte{0x01}, SeedSize)) {
		t.Fatal("modifying the slice from Ed25519() changed the key")
	}
}
