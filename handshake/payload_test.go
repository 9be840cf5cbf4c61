package handshake

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPayloadEncoding(t *testing.T) {
	p := Payload{Version: 1, Features: []Feature{0x0102, 0xfffe}, Name: "db", Instance: 0x0011223344556677}
	b, err := p.AppendBinary([]byte{0xaa}) // appends after existing bytes
	if err != nil {
		t.Fatal(err)
	}
	want := "aa" + // existing
		"01" + // version
		"0011223344556677" + // instance
		"02" + "0102" + "fffe" + // features
		"02" + "6462" + // name "db"
		"0000" // no extension
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("AppendBinary = %s, want %s", got, want)
	}
	got, n, err := ParsePayload(b[1:])
	if err != nil || n != len(b)-1 || !reflect.DeepEqual(got, p) {
		t.Fatalf("ParsePayload = %+v, %d, %v", got, n, err)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	maxFeatures := make([]Feature, MaxFeatures)
	for i := range maxFeatures {
		maxFeatures[i] = Feature(i * 1000)
	}
	for _, p := range []Payload{
		{Version: 1},
		{Version: 1, Name: "alpha", Instance: 1},
		{Version: 1, Name: strings.Repeat("x", MaxNameLen), Features: maxFeatures, Instance: ^uint64(0)},
		{Version: 1, Name: strings.Repeat("é", MaxNameLen/2)},
		{Version: 1, Name: "東京 node 🚀"},
		{Version: LastCompatibleVersion, Features: []Feature{5, 5}}, // duplicates are kept as sent
		{Version: 1, Name: "id", Identity: bytes.Repeat([]byte{0x42}, IdentityKeySize)},
		{Version: 1, Name: strings.Repeat("x", MaxNameLen), Features: maxFeatures, Instance: ^uint64(0),
			Lane: bytes.Repeat([]byte{0xab}, LaneKeySize), Identity: bytes.Repeat([]byte{0x42}, IdentityKeySize)},
	} {
		b, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatalf("AppendBinary(%v): %v", p, err)
		}
		if len(b) > maxEncodedSize {
			t.Fatalf("AppendBinary(%v) = %d bytes, over maxEncodedSize %d", p, len(b), maxEncodedSize)
		}
		got, n, err := ParsePayload(b)
		if err != nil || n != len(b) || !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip of %v = %v, %d, %v", p, got, n, err)
		}
	}
}

func TestPayloadEncodeRejects(t *testing.T) {
	cases := map[string]struct {
		p    Payload
		want error
	}{
		"version 0":      {Payload{Version: 0}, ErrUnsupportedVersion},
		"version 128":    {Payload{Version: 128}, ErrUnsupportedVersion},
		"too many feats": {Payload{Version: 1, Features: make([]Feature, MaxFeatures+1)}, ErrInvalidPayload},
		"long name":      {Payload{Version: 1, Name: strings.Repeat("x", MaxNameLen+1)}, ErrInvalidPayload},
		"long name utf8": {Payload{Version: 1, Name: strings.Repeat("é", MaxNameLen/2) + "x"}, ErrInvalidPayload},
		"invalid utf8":   {Payload{Version: 1, Name: "a\xffb"}, ErrInvalidPayload},
		"newline":        {Payload{Version: 1, Name: "a\nb"}, ErrInvalidPayload},
		"nul":            {Payload{Version: 1, Name: "a\x00"}, ErrInvalidPayload},
		"escape":         {Payload{Version: 1, Name: "\x1b[31mred"}, ErrInvalidPayload},
		"c1 control":     {Payload{Version: 1, Name: "a\u0085b"}, ErrInvalidPayload},
		"delete":         {Payload{Version: 1, Name: "a\x7f"}, ErrInvalidPayload},
		"short identity": {Payload{Version: 1, Identity: make([]byte, IdentityKeySize-1)}, ErrInvalidPayload},
	}
	for name, c := range cases {
		b, err := c.p.AppendBinary([]byte("keep"))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
		if string(b) != "keep" {
			t.Errorf("%s: AppendBinary changed b to %q on error", name, b)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "handshake: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

func TestParsePayloadRejects(t *testing.T) {
	good := mustPayload(t, Payload{Version: 1, Features: []Feature{1, 2}, Name: "node", Instance: 9})
	for n := range len(good) {
		if _, _, err := ParsePayload(good[:n]); !errors.Is(err, ErrShortPayload) {
			t.Fatalf("ParsePayload(first %d of %d bytes): err = %v, want ErrShortPayload", n, len(good), err)
		}
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	const (
		nfOff   = versionSize + instanceSize
		nameOff = nfOff + featureCountSize + 2*featureSize // namelen byte
	)
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"version 0":    {mod(func(b []byte) []byte { b[0] = 0; return b }), ErrUnsupportedVersion},
		"version 200":  {mod(func(b []byte) []byte { b[0] = 200; return b }), ErrUnsupportedVersion},
		"33 features":  {mod(func(b []byte) []byte { b[nfOff] = MaxFeatures + 1; return b }), ErrInvalidPayload},
		"255 features": {mod(func(b []byte) []byte { b[nfOff] = 255; return b }), ErrInvalidPayload},
		"name 65":      {mod(func(b []byte) []byte { b[nameOff] = MaxNameLen + 1; return b }), ErrInvalidPayload},
		"name ctrl":    {mod(func(b []byte) []byte { b[nameOff+1] = '\n'; return b }), ErrInvalidPayload},
		"name utf8":    {mod(func(b []byte) []byte { b[nameOff+1] = 0xc3; return b }), ErrInvalidPayload},
		"ext beyond":   {mod(func(b []byte) []byte { b[len(b)-1] = 5; return b }), ErrShortPayload},
		"ext too big":  {mod(func(b []byte) []byte { b[len(b)-2] = 0xff; b[len(b)-1] = 0xff; return b }), ErrPayloadTooLarge},
		"empty":        {nil, ErrShortPayload},
	}
	for name, c := range cases {
		if _, _, err := ParsePayload(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
}

// TestPayloadExtension: a later version's extension bytes are skipped and
// counted in n; bytes after the payload are left alone.
func TestPayloadExtension(t *testing.T) {
	p := Payload{Version: 2, Name: "future", Instance: 3}
	base := mustPayload(t, p)
	for _, extLen := range []int{0, 1, 100, MaxPayloadSize - len(base)} {
		b := bytes.Clone(base)
		b[len(b)-2], b[len(b)-1] = byte(extLen>>8), byte(extLen)
		b = append(b, bytes.Repeat([]byte{0xee}, extLen)...)
		b = append(b, "trailer"...)
		got, n, err := ParsePayload(b)
		if err != nil {
			t.Fatalf("ext %d: %v", extLen, err)
		}
		if n != len(base)+extLen || !reflect.DeepEqual(got, p) {
			t.Fatalf("ext %d: got %v, n=%d; want %v, n=%d", extLen, got, n, p, len(base)+extLen)
		}
	}
	// One byte over MaxPayloadSize is refused, even with all bytes present.
	extLen := MaxPayloadSize - len(base) + 1
	b := bytes.Clone(base)
	b[len(b)-2], b[len(b)-1] = byte(extLen>>8), byte(extLen)
	b = append(b, make([]byte, extLen)...)
	if _, _, err := ParsePayload(b); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("payload of %d bytes: err = %v, want ErrPayloadTooLarge", len(b), err)
	}
}

func TestPayloadAllocationBounded(t *testing.T) {
	b := mustPayload(t, Payload{Version: 1, Features: make([]Feature, MaxFeatures), Name: strings.Repeat("n", MaxNameLen)})
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := ParsePayload(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 { // the feature slice and the name string
		t.Fatalf("ParsePayload allocates %.0f times, want at most 2", allocs)
	}
}

// TestPayloadLane: the lane key travels in an extension record that older
// versions skip; a lane record of the wrong size is invalid, and records of
// unknown types around it are skipped.
func TestPayloadLane(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, LaneKeySize)
	p := Payload{Version: 1, Name: "lane", Instance: 9, Lane: key}
	b := mustPayload(t, p)
	got, n, err := ParsePayload(b)
	if err != nil || n != len(b) || !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip: %v, n=%d, err %v; want %v", got, n, err, p)
	}
	plain := mustPayload(t, Payload{Version: 1, Name: "lane", Instance: 9})
	if len(b) != len(plain)+laneRecordSize {
		t.Fatalf("lane record adds %d bytes, want %d", len(b)-len(plain), laneRecordSize)
	}
	// An unknown record before the lane record is skipped.
	ext := append([]byte{0x7f, 3, 1, 2, 3}, b[len(plain):]...)
	mixed := append(bytes.Clone(plain[:len(plain)-2]), byte(len(ext)>>8), byte(len(ext)))
	mixed = append(mixed, ext...)
	if got, _, err := ParsePayload(mixed); err != nil || !bytes.Equal(got.Lane, key) {
		t.Fatalf("lane after an unknown record: %v, %v", got.Lane, err)
	}
	// A lane record of the wrong length.
	bad := append(bytes.Clone(plain[:len(plain)-2]), 0, 4, extLane, 2, 1, 2)
	if _, _, err := ParsePayload(bad); !errors.Is(err, ErrInvalidPayload) {
		t.Fatalf("short lane record: err = %v, want ErrInvalidPayload", err)
	}
	if _, err := (Payload{Version: 1, Lane: []byte{1}}).AppendBinary(nil); !errors.Is(err, ErrInvalidPayload) {
		t.Fatalf("encoding a 1-byte lane key: err = %v, want ErrInvalidPayload", err)
	}
}

// TestPayloadIdentity: the initiator's Ed25519 key travels in an extension
// record (type 2) that older versions skip, next to a lane record and
// unknown ones; a record of the wrong size is invalid; CheckIdentity names
// the sender's exact peer ID only when the key is the one behind the static
// key, and the zero PeerID when the record is absent.
func TestPayloadIdentity(t *testing.T) {
	a, b := newNode(t), newNode(t)
	pub := a.id.Public()
	p := Payload{Version: 1, Name: "a", Instance: 9, Identity: pub[:]}
	enc := mustPayload(t, p)
	plain := mustPayload(t, Payload{Version: 1, Name: "a", Instance: 9})
	if len(enc) != len(plain)+identityRecordSize || enc[len(plain)] != extIdentity || enc[len(plain)+1] != IdentityKeySize {
		t.Fatalf("identity record %x after %x, want type %d, length %d", enc[len(plain)-2:], plain, extIdentity, IdentityKeySize)
	}
	got, n, err := ParsePayload(enc)
	if err != nil || n != len(enc) || !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip: %v, n=%d, err %v; want %v", got, n, err, p)
	}
	if maxEncodedSize > MaxPayloadSize {
		t.Fatalf("the largest payload, %d bytes, is over MaxPayloadSize %d", maxEncodedSize, MaxPayloadSize)
	}

	// After an unknown record and a lane record, in any order.
	lane := append([]byte{extLane, LaneKeySize}, bytes.Repeat([]byte{0xab}, LaneKeySize)...)
	ext := append(append([]byte{0x7f, 3, 1, 2, 3}, enc[len(plain):]...), lane...)
	mixed := append(bytes.Clone(plain[:len(plain)-2]), byte(len(ext)>>8), byte(len(ext)))
	mixed = append(mixed, ext...)
	if got, _, err := ParsePayload(mixed); err != nil || !bytes.Equal(got.Identity, pub[:]) || len(got.Lane) != LaneKeySize {
		t.Fatalf("identity among other records: %+v, %v", got, err)
	}
	// A record of the wrong length.
	bad := append(bytes.Clone(plain[:len(plain)-2]), 0, 4, extIdentity, 2, 1, 2)
	if _, _, err := ParsePayload(bad); !errors.Is(err, ErrInvalidPayload) {
		t.Fatalf("short identity record: err = %v, want ErrInvalidPayload", err)
	}

	// CheckIdentity against the static key message 1 proved.
	if id, err := got.CheckIdentity(a.kp.Public); err != nil || id != a.id.PeerID() {
		t.Fatalf("CheckIdentity(a's static) = %v, %v; want %v", id, err, a.id.PeerID())
	}
	if id, err := (Payload{Version: 1}).CheckIdentity(a.kp.Public); err != nil || !id.IsZero() {
		t.Fatalf("CheckIdentity without a record = %v, %v; want the zero PeerID", id, err)
	}
	for name, key := range map[string][]byte{
		"another key": func() []byte { k := b.id.Public(); return k[:] }(),
		"zero key":    make([]byte, IdentityKeySize),
		"not a point": bytes.Repeat([]byte{0xff}, IdentityKeySize),
		"short":       pub[:IdentityKeySize-1],
	} {
		id, err := Payload{Version: 1, Identity: key}.CheckIdentity(a.kp.Public)
		if !errors.Is(err, ErrInvalidPayload) || !id.IsZero() {
			t.Errorf("%s: CheckIdentity = %v, %v; want ErrInvalidPayload", name, id, err)
		}
	}
}

// TestMessage1Identity: a message 1 whose payload carries the initiator's
// Ed25519 key, at the largest payload AppendBinary writes, passes a real
// handshake, and the responder learns the exact peer ID before it answers.
func TestMessage1Identity(t *testing.T) {
	a, b := newNode(t), newNode(t)
	pub := a.id.Public()
	full := make([]Feature, MaxFeatures)
	p := Payload{Version: ProtocolVersion, Features: full, Name: strings.Repeat("n", MaxNameLen),
		Lane: make([]byte, LaneKeySize), Identity: pub[:]}
	enc := mustPayload(t, p)
	if len(enc) != maxEncodedSize {
		t.Fatalf("payload is %d bytes, want maxEncodedSize %d", len(enc), maxEncodedSize)
	}
	ini, err := NewInitiator(Config{Static: a.kp, Prologue: BindingPrologue(testExporter)}, b.kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	msg1, err := ini.WriteMessage1(enc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResponder(Config{Static: b.kp, Prologue: BindingPrologue(testExporter)})
	if err != nil {
		t.Fatal(err)
	}
	static, payload, err := r.ReadMessage1(msg1)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ParsePayload(payload)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := got.CheckIdentity(static); err != nil || id != a.id.PeerID() {
		t.Fatalf("responder read identity %v, %v; want %v", id, err, a.id.PeerID())
	}
}
