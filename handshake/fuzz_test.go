package handshake

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParsePayload: any accepted input re-encodes, and the re-encoding parses
// back to the same Payload and encodes to itself; the fields before the
// extension are byte-identical to the input's, and without an extension all
// of it is. (Known records may come in any order, and unknown ones are
// dropped, so the extension is not.)
func FuzzParsePayload(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := ParsePayload(b)
		if err != nil {
			if !isPayloadError(err) {
				t.Fatalf("ParsePayload: unexpected error type: %v", err)
			}
			return
		}
		if n < MinPayloadSize || n > len(b) || n > MaxPayloadSize {
			t.Fatalf("ParsePayload consumed %d of %d bytes", n, len(b))
		}
		enc, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatalf("accepted payload %v does not re-encode: %v", p, err)
		}
		p2, n2, err := ParsePayload(enc)
		if err != nil || n2 != len(enc) || !reflect.DeepEqual(p, p2) {
			t.Fatalf("re-encoding of %v parses as %v, %d, %v", p, p2, n2, err)
		}
		if again, err := p2.AppendBinary(nil); err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("re-encoding %x encodes again as %x, %v", enc, again, err)
		}
		extAt := MinPayloadSize - extLenSize + len(p.Features)*featureSize + len(p.Name)
		if !bytes.Equal(enc[:extAt], b[:extAt]) {
			t.Fatalf("re-encoding %x differs from input %x before the extension", enc, b[:n])
		}
		if n == extAt+extLenSize && !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoding %x differs from input %x, which has no extension", enc, b[:n])
		}
	})
}

func isPayloadError(err error) bool {
	for _, e := range []error{ErrShortPayload, ErrPayloadTooLarge, ErrUnsupportedVersion, ErrInvalidPayload} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzReadMessage1: a responder with a fixed key never panics on arbitrary
// bytes; it fails with ErrDecrypt or ErrMessageTooLarge, and a success yields
// the initiator's real static key and completes the handshake.
func FuzzReadMessage1(f *testing.F) {
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := fx.responder(t)
		rs, payload, err := r.ReadMessage1(msg)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("ReadMessage1: unexpected error: %v", err)
			}
			if _, _, err := r.WriteMessage2(nil); !errors.Is(err, ErrState) {
				t.Fatalf("WriteMessage2 after a failed ReadMessage1: err = %v, want ErrState", err)
			}
			return
		}
		if rs != fx.a.kp.Public {
			t.Fatalf("ReadMessage1 accepted static key %x; only %x can authenticate", rs, fx.a.kp.Public)
		}
		if len(payload) != len(msg)-Message1Overhead {
			t.Fatalf("payload is %d bytes from a %d-byte message", len(payload), len(msg))
		}
		_, res, err := r.WriteMessage2(nil)
		if err != nil || res.RemoteStatic != rs || !bytes.Equal(res.RemotePayload, payload) || len(res.HandshakeHash) != 32 {
			t.Fatalf("WriteMessage2 after success: %+v, %v", res, err)
		}
	})
}

// FuzzReadMessage2: an initiator waiting for message 2 never panics on
// arbitrary bytes, and a success names the responder it dialed.
func FuzzReadMessage2(f *testing.F) {
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		ini := fx.sentInitiator(t)
		res, err := ini.ReadMessage2(msg)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("ReadMessage2: unexpected error: %v", err)
			}
			if _, err := ini.ReadMessage2(msg); !errors.Is(err, ErrState) {
				t.Fatalf("ReadMessage2 after a failure: err = %v, want ErrState", err)
			}
			return
		}
		if res.RemoteStatic != fx.b.kp.Public || len(res.HandshakeHash) != 32 ||
			len(res.RemotePayload) != len(msg)-Message2Overhead {
			t.Fatalf("ReadMessage2 succeeded with %+v", res)
		}
	})
}

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// fuzzSeeds returns the checked-in seed corpus: valid messages and payloads
// from the deterministic fixture, and near misses of them.
func fuzzSeeds(t testing.TB) map[string]map[string][]byte {
	fx := newFixture(t)
	msg1, msg2 := fx.messages(t)
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x80; return b }

	full := make([]Feature, MaxFeatures)
	for i := range full {
		full[i] = Feature(i + 1)
	}
	withExt := mustPayload(t, Payload{Version: 2, Name: "later", Instance: 5})
	withExt[len(withExt)-1] = 3
	withExt = append(withExt, "ext"...)
	ident := fx.a.id.Public()
	withIdentity := Payload{Version: 1, Name: "alpha", Instance: 7, Identity: ident[:]}
	withBoth := withIdentity
	withBoth.Lane = bytes.Repeat([]byte{0xab}, LaneKeySize)

	return map[string]map[string][]byte{
		"FuzzParsePayload": {
			"minimal":       mustPayload(t, Payload{Version: 1}),
			"typical":       mustPayload(t, Payload{Version: 1, Features: []Feature{1, 2}, Name: "alpha", Instance: 0xdeadbeef}),
			"full":          mustPayload(t, Payload{Version: 1, Features: full, Name: strings.Repeat("é", MaxNameLen/2), Instance: ^uint64(0)}),
			"extension":     withExt,
			"identity":      mustPayload(t, withIdentity),
			"lane-identity": mustPayload(t, withBoth),
			"version-zero":  append([]byte{0}, mustPayload(t, Payload{Version: 1})[1:]...),
			"truncated":     mustPayload(t, Payload{Version: 1, Name: "alpha"})[:12],
		},
		"FuzzReadMessage1": {
			"valid":       msg1,
			"bit-flip":    flip(msg1, Message1Overhead-1),
			"truncated":   msg1[:Message1Overhead-1],
			"header-only": msg1[:KeySize],
			"empty":       {},
		},
		"FuzzReadMessage2": {
			"valid":     msg2,
			"bit-flip":  flip(msg2, 0),
			"truncated": msg2[:Message2Overhead-1],
			"empty":     {},
		},
	}
}

// TestFuzzSeeds keeps testdata/fuzz equal to fuzzSeeds; refresh it with
// go test -run TestFuzzSeeds -update.
func TestFuzzSeeds(t *testing.T) {
	for target, seeds := range fuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range seeds {
				if err := os.WriteFile(filepath.Join(dir, name), corpusFile(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("%v (run go test -run TestFuzzSeeds -update)", err)
		}
		if len(entries) != len(seeds) {
			t.Errorf("%s holds %d files, want %d (run go test -run TestFuzzSeeds -update)", dir, len(entries), len(seeds))
		}
		for name, b := range seeds {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, corpusFile(b)) {
				t.Errorf("%s/%s is stale or missing (run go test -run TestFuzzSeeds -update)", dir, name)
			}
		}
	}
}

// corpusFile encodes one []byte input in Go's fuzz corpus file format.
func corpusFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}
