package handshake

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/p2pd/p2pd/identity"
)

// node is a test party: an identity key and its Noise key pair.
type node struct {
	id identity.PrivateKey
	kp Keypair
}

func newNode(t testing.TB) node {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.Public().NoisePublic()
	if err != nil {
		t.Fatal(err)
	}
	return node{id: k, kp: Keypair{Private: k.NoisePrivate(), Public: pub}}
}

// fixedNode is a node with a constant key, for reproducible messages.
func fixedNode(t testing.TB, b byte) node {
	t.Helper()
	k, err := identity.PrivateKeyFromSeed(bytes.Repeat([]byte{b}, identity.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.Public().NoisePublic()
	if err != nil {
		t.Fatal(err)
	}
	return node{id: k, kp: Keypair{Private: k.NoisePrivate(), Public: pub}}
}

var testExporter = bytes.Repeat([]byte{0xee}, 32)

func TestRoundTrip(t *testing.T) {
	a, b := newNode(t), newNode(t)
	pa := mustPayload(t, Payload{Version: ProtocolVersion, Features: []Feature{1, 7}, Name: "alpha", Instance: 42})
	pb := mustPayload(t, Payload{Version: ProtocolVersion, Name: "béta", Instance: 1 << 63})

	// The initiator needs only the responder's peer ID.
	remote, err := b.id.PeerID().PublicKey().NoisePublic()
	if err != nil {
		t.Fatal(err)
	}
	ini, err := NewInitiator(Config{Static: a.kp, Prologue: BindingPrologue(testExporter)}, remote)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := NewResponder(Config{Static: b.kp, Prologue: BindingPrologue(testExporter)})
	if err != nil {
		t.Fatal(err)
	}
	msg1, err := ini.WriteMessage1(pa)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg1) != Message1Overhead+len(pa) {
		t.Fatalf("message 1 is %d bytes, want %d", len(msg1), Message1Overhead+len(pa))
	}
	rs, got, err := resp.ReadMessage1(msg1)
	if err != nil {
		t.Fatal(err)
	}
	if rs != a.kp.Public || !bytes.Equal(got, pa) {
		t.Fatalf("ReadMessage1 = %x, %x", rs, got)
	}
	msg2, rres, err := resp.WriteMessage2(pb)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg2) != Message2Overhead+len(pb) {
		t.Fatalf("message 2 is %d bytes, want %d", len(msg2), Message2Overhead+len(pb))
	}
	ires, err := ini.ReadMessage2(msg2)
	if err != nil {
		t.Fatal(err)
	}
	if ires.RemoteStatic != b.kp.Public || !bytes.Equal(ires.RemotePayload, pb) {
		t.Fatalf("initiator result: %x %x", ires.RemoteStatic, ires.RemotePayload)
	}
	if rres.RemoteStatic != a.kp.Public || !bytes.Equal(rres.RemotePayload, pa) {
		t.Fatalf("responder result: %x %x", rres.RemoteStatic, rres.RemotePayload)
	}
	if len(ires.HandshakeHash) != 32 || !bytes.Equal(ires.HandshakeHash, rres.HandshakeHash) {
		t.Fatalf("handshake hashes: %x, %x", ires.HandshakeHash, rres.HandshakeHash)
	}
	// Both ends derive the same secret, which is neither the public hash
	// nor either transport key.
	if ires.Secret != rres.Secret || ires.Secret == ([32]byte{}) || bytes.Equal(ires.Secret[:], ires.HandshakeHash) {
		t.Fatalf("secrets: %x, %x", ires.Secret, rres.Secret)
	}
	if k := ires.Send.cs.UnsafeKey(); k == ires.Secret {
		t.Fatal("the secret is the initiator's sending key")
	}
	// The payloads decode back to what was sent.
	if p, _, err := ParsePayload(rres.RemotePayload); err != nil || p.Name != "alpha" || p.Instance != 42 {
		t.Fatalf("responder parsed %+v, %v", p, err)
	}
	if p, _, err := ParsePayload(ires.RemotePayload); err != nil || p.Name != "béta" {
		t.Fatalf("initiator parsed %+v, %v", p, err)
	}

	// A second handshake between the same nodes has a different hash (fresh ephemerals).
	again := handshake(t, a, b, BindingPrologue(testExporter), BindingPrologue(testExporter))
	if bytes.Equal(again.HandshakeHash, ires.HandshakeHash) {
		t.Fatal("two handshakes share a handshake hash")
	}
	if again.Secret == ires.Secret {
		t.Fatal("two handshakes share a secret")
	}
}

func mustPayload(t testing.TB, p Payload) []byte {
	t.Helper()
	b, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handshake runs a complete handshake and returns the initiator's result.
func handshake(t *testing.T, a, b node, prologueA, prologueB []byte) Result {
	t.Helper()
	ini, err := NewInitiator(Config{Static: a.kp, Prologue: prologueA}, b.kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := NewResponder(Config{Static: b.kp, Prologue: prologueB})
	if err != nil {
		t.Fatal(err)
	}
	msg1, err := ini.WriteMessage1(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := resp.ReadMessage1(msg1); err != nil {
		t.Fatal(err)
	}
	msg2, _, err := resp.WriteMessage2(nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ini.ReadMessage2(msg2)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestWrongRemoteStatic(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	// a thinks it talks to c, but b answers.
	ini, _ := NewInitiator(Config{Static: a.kp}, c.kp.Public)
	resp, _ := NewResponder(Config{Static: b.kp})
	msg1, err := ini.WriteMessage1([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := resp.ReadMessage1(msg1); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("ReadMessage1 for another responder: err = %v, want ErrDecrypt", err)
	}
}

// TestImpostorResponder: a message 2 from any other handshake — here one that
// Mallory completed with a as its real responder — fails a's handshake
// towards b. Mallory cannot build a fitting one: message 2's keys depend on
// es and ss from message 1, which need b's private key.
func TestImpostorResponder(t *testing.T) {
	a, b, mallory := newNode(t), newNode(t), newNode(t)
	ini, _ := NewInitiator(Config{Static: a.kp}, b.kp.Public)
	if _, err := ini.WriteMessage1(nil); err != nil {
		t.Fatal(err)
	}
	toMallory, _ := NewInitiator(Config{Static: a.kp}, mallory.kp.Public)
	m1, _ := toMallory.WriteMessage1(nil)
	respM, _ := NewResponder(Config{Static: mallory.kp})
	if _, _, err := respM.ReadMessage1(m1); err != nil {
		t.Fatal(err)
	}
	msg2, _, err := respM.WriteMessage2(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ini.ReadMessage2(msg2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("ReadMessage2 of an impostor's message: err = %v, want ErrDecrypt", err)
	}
}

func TestPrologueMismatch(t *testing.T) {
	a, b := newNode(t), newNode(t)
	other := bytes.Repeat([]byte{0xef}, 32)
	cases := map[string][2][]byte{
		"different exporter": {BindingPrologue(testExporter), BindingPrologue(other)},
		"label only":         {BindingPrologue(testExporter), []byte(PrologueLabel)},
		"empty vs binding":   {nil, BindingPrologue(testExporter)},
	}
	for name, pro := range cases {
		t.Run(name, func(t *testing.T) {
			ini, _ := NewInitiator(Config{Static: a.kp, Prologue: pro[0]}, b.kp.Public)
			resp, _ := NewResponder(Config{Static: b.kp, Prologue: pro[1]})
			msg1, err := ini.WriteMessage1(nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := resp.ReadMessage1(msg1); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("ReadMessage1 with another prologue: err = %v, want ErrDecrypt", err)
			}
		})
	}
}

// TestReplayOnOtherConnection: message 1 recorded on one connection is
// accepted there, but fails on a responder bound to any other connection.
func TestReplayOnOtherConnection(t *testing.T) {
	a, b := newNode(t), newNode(t)
	conn1, conn2 := BindingPrologue(testExporter), BindingPrologue(bytes.Repeat([]byte{0x11}, 32))
	ini, _ := NewInitiator(Config{Static: a.kp, Prologue: conn1}, b.kp.Public)
	msg1, _ := ini.WriteMessage1([]byte("p"))

	orig, _ := NewResponder(Config{Static: b.kp, Prologue: conn1})
	if _, _, err := orig.ReadMessage1(msg1); err != nil {
		t.Fatalf("original connection: %v", err)
	}
	replay, _ := NewResponder(Config{Static: b.kp, Prologue: conn2})
	if _, _, err := replay.ReadMessage1(msg1); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("replayed on another connection: err = %v, want ErrDecrypt", err)
	}
}

func TestConfigKeys(t *testing.T) {
	a, b := newNode(t), newNode(t)
	bad := a.kp
	bad.Public[0] ^= 1
	if _, err := NewInitiator(Config{Static: bad}, b.kp.Public); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewInitiator with a mismatched static key: err = %v, want ErrInvalidKey", err)
	}
	if _, err := NewResponder(Config{Static: bad}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewResponder with a mismatched static key: err = %v, want ErrInvalidKey", err)
	}
	if _, err := NewResponder(Config{}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewResponder with no static key: err = %v, want ErrInvalidKey", err)
	}
	eph := b.kp
	eph.Public = a.kp.Public
	if _, err := NewResponder(Config{Static: b.kp, Ephemeral: &eph}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewResponder with a mismatched ephemeral: err = %v, want ErrInvalidKey", err)
	}
	// Low-order X25519 points (RFC 7748 §6.1 lists them): 0, 1, and an order-8 point.
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	} {
		var rs [KeySize]byte
		copy(rs[:], unhex(t, h))
		if _, err := NewInitiator(Config{Static: a.kp}, rs); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NewInitiator(remote %s): err = %v, want ErrInvalidKey", h, err)
		}
	}
}

func TestRandomSource(t *testing.T) {
	a, b := newNode(t), newNode(t)
	// A failing random source fails WriteMessage1 and kills the machine.
	ini, _ := NewInitiator(Config{Static: a.kp, Random: bytes.NewReader(nil)}, b.kp.Public)
	if _, err := ini.WriteMessage1(nil); err == nil || errors.Is(err, ErrState) {
		t.Fatalf("WriteMessage1 with an empty random source: err = %v", err)
	}
	if _, err := ini.WriteMessage1(nil); !errors.Is(err, ErrState) {
		t.Fatalf("after a failure: err = %v, want ErrState", err)
	}
	// An explicit Random is used: the same bytes give the same message 1.
	seed := make([]byte, 32)
	rand.Read(seed)
	m := func() []byte {
		ini, _ := NewInitiator(Config{Static: a.kp, Random: bytes.NewReader(seed)}, b.kp.Public)
		msg, err := ini.WriteMessage1(nil)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	if !bytes.Equal(m(), m()) {
		t.Fatal("the same Random gave different messages")
	}
}
