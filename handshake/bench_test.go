package handshake

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"
)

// BenchmarkHandshake runs one whole IK handshake (both sides) per op.
func BenchmarkHandshake(b *testing.B) {
	kp := func() Keypair {
		k, _ := ecdh.X25519().GenerateKey(rand.Reader)
		var out Keypair
		copy(out.Private[:], k.Bytes())
		copy(out.Public[:], k.PublicKey().Bytes())
		return out
	}
	ik, rk := kp(), kp()
	prologue := []byte("bench")
	for i := 0; i < b.N; i++ {
		in, err := NewInitiator(Config{Static: ik, Prologue: prologue}, rk.Public)
		if err != nil {
			b.Fatal(err)
		}
		m1, err := in.WriteMessage1(nil)
		if err != nil {
			b.Fatal(err)
		}
		re, _ := NewResponder(Config{Static: rk, Prologue: prologue})
		if _, _, err := re.ReadMessage1(m1); err != nil {
			b.Fatal(err)
		}
		m2, _, err := re.WriteMessage2(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := in.ReadMessage2(m2); err != nil {
			b.Fatal(err)
		}
	}
}
