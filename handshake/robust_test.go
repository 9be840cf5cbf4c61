package handshake

import (
	"bytes"
	"errors"
	"testing"
)

// fixture makes reproducible handshakes: fixed static and ephemeral keys, so
// that every fresh Initiator writes the same message 1 and accepts the same
// message 2.
type fixture struct {
	a, b       node
	ephA, ephB Keypair
	prologue   []byte
	payload1   []byte
	payload2   []byte
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{
		a: fixedNode(t, 0x0a), b: fixedNode(t, 0x0b),
		ephA: fixedNode(t, 0xea).kp, ephB: fixedNode(t, 0xeb).kp,
		prologue: BindingPrologue(bytes.Repeat([]byte{0x5a}, 32)),
		payload1: mustPayload(t, Payload{Version: ProtocolVersion, Features: []Feature{1, 2, 3}, Name: "alpha", Instance: 7}),
		payload2: mustPayload(t, Payload{Version: ProtocolVersion, Name: "beta", Instance: 8}),
	}
	return f
}

func (f *fixture) initiator(t testing.TB) *Initiator {
	ini, err := NewInitiator(Config{Static: f.a.kp, Prologue: f.prologue, Ephemeral: &f.ephA}, f.b.kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	return ini
}

func (f *fixture) responder(t testing.TB) *Responder {
	r, err := NewResponder(Config{Static: f.b.kp, Prologue: f.prologue, Ephemeral: &f.ephB})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// messages returns a valid message 1 and the matching message 2.
func (f *fixture) messages(t testing.TB) (msg1, msg2 []byte) {
	msg1, err := f.initiator(t).WriteMessage1(f.payload1)
	if err != nil {
		t.Fatal(err)
	}
	r := f.responder(t)
	if _, _, err := r.ReadMessage1(msg1); err != nil {
		t.Fatal(err)
	}
	msg2, _, err = r.WriteMessage2(f.payload2)
	if err != nil {
		t.Fatal(err)
	}
	return msg1, msg2
}

// sentInitiator returns an Initiator that has written message 1 and waits for
// message 2.
func (f *fixture) sentInitiator(t testing.TB) *Initiator {
	ini := f.initiator(t)
	if _, err := ini.WriteMessage1(f.payload1); err != nil {
		t.Fatal(err)
	}
	return ini
}

func TestFixtureIsValid(t *testing.T) {
	f := newFixture(t)
	msg1, msg2 := f.messages(t)
	if _, _, err := f.responder(t).ReadMessage1(msg1); err != nil {
		t.Fatalf("message 1 rejected: %v", err)
	}
	if _, err := f.sentInitiator(t).ReadMessage2(msg2); err != nil {
		t.Fatalf("message 2 rejected: %v", err)
	}
}

func TestBitFlips(t *testing.T) {
	f := newFixture(t)
	msg1, msg2 := f.messages(t)
	for i := range msg1 {
		for bit := range 8 {
			m := bytes.Clone(msg1)
			m[i] ^= 1 << bit
			if _, _, err := f.responder(t).ReadMessage1(m); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("message 1 with byte %d bit %d flipped: err = %v, want ErrDecrypt", i, bit, err)
			}
		}
	}
	for i := range msg2 {
		for bit := range 8 {
			m := bytes.Clone(msg2)
			m[i] ^= 1 << bit
			if _, err := f.sentInitiator(t).ReadMessage2(m); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("message 2 with byte %d bit %d flipped: err = %v, want ErrDecrypt", i, bit, err)
			}
		}
	}
}

func TestTruncation(t *testing.T) {
	f := newFixture(t)
	msg1, msg2 := f.messages(t)
	for n := range len(msg1) {
		if _, _, err := f.responder(t).ReadMessage1(msg1[:n]); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("message 1 cut to %d bytes: err = %v, want ErrDecrypt", n, err)
		}
	}
	for n := range len(msg2) {
		if _, err := f.sentInitiator(t).ReadMessage2(msg2[:n]); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("message 2 cut to %d bytes: err = %v, want ErrDecrypt", n, err)
		}
	}
	// Appended bytes fail too: the tag covers the exact length.
	if _, _, err := f.responder(t).ReadMessage1(append(bytes.Clone(msg1), 0)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("message 1 with a byte appended: err = %v, want ErrDecrypt", err)
	}
	if _, err := f.sentInitiator(t).ReadMessage2(append(bytes.Clone(msg2), 0)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("message 2 with a byte appended: err = %v, want ErrDecrypt", err)
	}
}

func TestGarbage(t *testing.T) {
	f := newFixture(t)
	for _, n := range []int{Message1Overhead, Message1Overhead + 1, 200, 1000} {
		for _, fill := range []byte{0x00, 0xff, 0x5a} {
			m := bytes.Repeat([]byte{fill}, n)
			if _, _, err := f.responder(t).ReadMessage1(m); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("ReadMessage1(%d × %#x): err = %v, want ErrDecrypt", n, fill, err)
			}
			if _, err := f.sentInitiator(t).ReadMessage2(m); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("ReadMessage2(%d × %#x): err = %v, want ErrDecrypt", n, fill, err)
			}
		}
	}
}

func TestOversized(t *testing.T) {
	f := newFixture(t)
	big := make([]byte, MaxMessageSize+1)
	if _, _, err := f.responder(t).ReadMessage1(big); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("ReadMessage1(%d bytes): err = %v, want ErrMessageTooLarge", len(big), err)
	}
	if _, err := f.sentInitiator(t).ReadMessage2(big); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("ReadMessage2(%d bytes): err = %v, want ErrMessageTooLarge", len(big), err)
	}
	// Payloads: the largest that fits works, one more byte does not.
	max1 := make([]byte, MaxMessageSize-Message1Overhead)
	m, err := f.initiator(t).WriteMessage1(max1)
	if err != nil || len(m) != MaxMessageSize {
		t.Fatalf("WriteMessage1(max payload) = %d bytes, %v", len(m), err)
	}
	r := f.responder(t)
	if _, _, err := r.ReadMessage1(m); err != nil {
		t.Fatalf("ReadMessage1(%d-byte message): %v", len(m), err)
	}
	if _, err := f.initiator(t).WriteMessage1(append(max1, 0)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("WriteMessage1(max+1 payload): err = %v, want ErrMessageTooLarge", err)
	}
	max2 := make([]byte, MaxMessageSize-Message2Overhead)
	if m, _, err := r.WriteMessage2(max2); err != nil || len(m) != MaxMessageSize {
		t.Fatalf("WriteMessage2(max payload) = %d bytes, %v", len(m), err)
	}
	r = f.responder(t)
	msg1, _ := f.messages(t)
	if _, _, err := r.ReadMessage1(msg1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.WriteMessage2(append(max2, 0)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("WriteMessage2(max+1 payload): err = %v, want ErrMessageTooLarge", err)
	}
}

func TestStateOrder(t *testing.T) {
	f := newFixture(t)
	msg1, msg2 := f.messages(t)
	isState := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrState) {
			t.Fatalf("%s: err = %v, want ErrState", what, err)
		}
	}

	t.Run("initiator", func(t *testing.T) {
		ini := f.initiator(t)
		_, err := ini.ReadMessage2(msg2)
		isState(t, "ReadMessage2 before WriteMessage1", err)
		ini = f.initiator(t)
		if _, err := ini.WriteMessage1(nil); err != nil {
			t.Fatal(err)
		}
		_, err = ini.WriteMessage1(nil)
		isState(t, "WriteMessage1 twice", err)

		ini = f.sentInitiator(t)
		if _, err := ini.ReadMessage2(msg2); err != nil {
			t.Fatal(err)
		}
		_, err = ini.ReadMessage2(msg2)
		isState(t, "ReadMessage2 after done", err)
		_, err = ini.WriteMessage1(nil)
		isState(t, "WriteMessage1 after done", err)
	})

	t.Run("initiator dead after error", func(t *testing.T) {
		ini := f.sentInitiator(t)
		if _, err := ini.ReadMessage2(msg2[:10]); !errors.Is(err, ErrDecrypt) {
			t.Fatal(err)
		}
		_, err := ini.ReadMessage2(msg2) // the valid message, too late
		isState(t, "ReadMessage2 after a failure", err)

		ini = f.initiator(t)
		if _, err := ini.WriteMessage1(make([]byte, MaxMessageSize)); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatal(err)
		}
		_, err = ini.WriteMessage1(nil)
		isState(t, "WriteMessage1 after ErrMessageTooLarge", err)
	})

	t.Run("responder", func(t *testing.T) {
		r := f.responder(t)
		_, _, err := r.WriteMessage2(nil)
		isState(t, "WriteMessage2 before ReadMessage1", err)
		r = f.responder(t)
		if _, _, err := r.ReadMessage1(msg1); err != nil {
			t.Fatal(err)
		}
		_, _, err = r.ReadMessage1(msg1)
		isState(t, "ReadMessage1 twice", err)

		r = f.responder(t)
		r.ReadMessage1(msg1)
		if _, _, err := r.WriteMessage2(nil); err != nil {
			t.Fatal(err)
		}
		_, _, err = r.WriteMessage2(nil)
		isState(t, "WriteMessage2 after done", err)
		_, _, err = r.ReadMessage1(msg1)
		isState(t, "ReadMessage1 after done", err)
	})

	t.Run("responder dead after error", func(t *testing.T) {
		r := f.responder(t)
		bad := bytes.Clone(msg1)
		bad[len(bad)-1] ^= 1
		if _, _, err := r.ReadMessage1(bad); !errors.Is(err, ErrDecrypt) {
			t.Fatal(err)
		}
		_, _, err := r.ReadMessage1(msg1)
		isState(t, "ReadMessage1 after a failure", err)
		_, _, err = r.WriteMessage2(nil)
		isState(t, "WriteMessage2 after a failure", err)
	})

	t.Run("zero values and nil", func(t *testing.T) {
		var ini Initiator
		_, err := ini.WriteMessage1(nil)
		isState(t, "zero Initiator", err)
		var r Responder
		_, _, err = r.ReadMessage1(msg1)
		isState(t, "zero Responder", err)
		var nilIni *Initiator
		_, err = nilIni.ReadMessage2(msg2)
		isState(t, "nil Initiator", err)
		var nilR *Responder
		_, _, err = nilR.WriteMessage2(nil)
		isState(t, "nil Responder", err)
	})
}
