package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParsePeerIDRoundTrip(t *testing.T) {
	for i := range 200 {
		id := mustGenerate(t, nil).PeerID()
		s, b36 := id.String(), id.Base36()
		if !strings.HasPrefix(s, "12D3KooW") || !strings.HasPrefix(b36, "k51") || len(b36) != 62 {
			t.Fatalf("key %d: unexpected text forms %s %s", i, s, b36)
		}
		for _, text := range []string{s, b36, strings.ToUpper(b36), "K" + b36[1:]} {
			got, err := ParsePeerID(text)
			if err != nil {
				t.Fatalf("ParsePeerID(%q): %v", text, err)
			}
			if got != id {
				t.Fatalf("ParsePeerID(%q) = %s, want %s", text, got, id)
			}
		}
	}
}

func TestParsePeerIDRejects(t *testing.T) {
	good := knownKeys[0].peerID
	good36 := knownKeys[0].base36
	secpID := "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY"       // secp256k1 key, identity multihash
	rsaID := "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"               // sha2-256 multihash (RSA-style)
	cidRaw := "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy" // a CIDv1, codec raw, base32
	cases := []string{
		"",
		"x",
		"12D3KooW",
		good[:len(good)-1],
		good + "1",
		good + "a",
		strings.ToLower(good),       // base58 is case-sensitive
		good[:10] + "0" + good[11:], // '0' is not base58
		good[:10] + "l" + good[11:], // 'l' is not base58
		" " + good,
		good + "\n",
		good36[:len(good36)-1],
		good36 + "0",
		good36[:20] + "!" + good36[21:],
		"k" + good36[2:], // drops a digit: wrong length
		"k",
		"K",
		secpID,
		rsaID,
		cidRaw,
		"/p2p/" + good,
		strings.Repeat("1", 1000),
		strings.Repeat("k", 1000),
	}
	for _, s := range cases {
		_, err := ParsePeerID(s)
		if err == nil {
			t.Errorf("ParsePeerID(%q) succeeded, want an error", s)
			continue
		}
		if !errors.Is(err, ErrInvalidPeerID) {
			t.Errorf("ParsePeerID(%q) err = %v, want ErrInvalidPeerID", s, err)
		}
		if len(err.Error()) > 300 {
			t.Errorf("ParsePeerID(%.20q…) error is %d bytes long", s, len(err.Error()))
		}
		if !strings.HasPrefix(err.Error(), "identity: peer id ") || !strings.Contains(err.Error(), quoteInput(s)) {
			t.Errorf("ParsePeerID(%q) err = %q, want it to name the input", s, err)
		}
	}
}

func TestPeerIDZero(t *testing.T) {
	var id PeerID
	if !id.IsZero() || id.String() != "" || id.Base36() != "" || id.ShortString() != "none" {
		t.Fatalf("zero PeerID: IsZero=%v String=%q Base36=%q ShortString=%q", id.IsZero(), id.String(), id.Base36(), id.ShortString())
	}
	if mustGenerate(t, nil).PeerID().IsZero() {
		t.Fatal("a real peer id reports IsZero")
	}
}

func TestPeerIDLess(t *testing.T) {
	var lo, hi PublicKey
	lo[0], hi[0] = 0x01, 0x02
	hi[31] = 0x00
	lo[31] = 0xff // the first byte decides, as in bytes.Compare
	a, b := lo.PeerID(), hi.PeerID()
	if !a.Less(b) || b.Less(a) || a.Less(a) {
		t.Fatalf("Less: a<b=%v b<a=%v a<a=%v", a.Less(b), b.Less(a), a.Less(a))
	}
	for range 100 {
		x, y := mustGenerate(t, nil).PeerID(), mustGenerate(t, nil).PeerID()
		kx, ky := x.PublicKey(), y.PublicKey()
		if want := bytes.Compare(kx[:], ky[:]) < 0; x.Less(y) != want || (want && y.Less(x)) {
			t.Fatalf("Less disagrees with bytes.Compare for %s, %s", x, y)
		}
	}
}

func TestPeerIDText(t *testing.T) {
	id := mustGenerate(t, nil).PeerID()
	type doc struct {
		Peer PeerID            `json:"peer"`
		None PeerID            `json:"none"`
		Map  map[PeerID]string `json:"map"`
	}
	in := doc{Peer: id, Map: map[PeerID]string{id: "alpha"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"peer":"` + id.String() + `","none":"","map":{"` + id.String() + `":"alpha"}}`
	if string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Peer != id || !out.None.IsZero() || out.Map[id] != "alpha" {
		t.Fatalf("json round trip = %+v", out)
	}
	// The base36 form is accepted on input too.
	if err := out.Peer.UnmarshalText([]byte(id.Base36())); err != nil || out.Peer != id {
		t.Fatalf("UnmarshalText(base36) = %s, %v", out.Peer, err)
	}
	if err := json.Unmarshal([]byte(`{"peer":"12D3KooWnope"}`), &out); !errors.Is(err, ErrInvalidPeerID) {
		t.Fatalf("json with a bad peer id: err = %v, want ErrInvalidPeerID", err)
	}
}

func TestBaseXRoundTrip(t *testing.T) {
	inputs := [][]byte{
		{}, {0}, {0, 0}, {0, 0, 1}, {1}, {255}, {0, 255, 255}, bytes.Repeat([]byte{0xff}, 40),
		{0x00, 0x01, 0x02, 0x03},
	}
	for range 50 {
		inputs = append(inputs, mustGenerate(t, nil).PeerID().multihash())
	}
	for _, alphabet := range []string{base58Alphabet, base36Alphabet} {
		for _, in := range inputs {
			s := encodeBaseX(alphabet, in)
			out, err := decodeBaseX(alphabet, s)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("alphabet %.4s…: %x -> %q -> %x, %v", alphabet, in, s, out, err)
			}
		}
	}
	// Known base58btc answers (Bitcoin alphabet).
	for in, want := range map[string]string{"": "", "\x00": "1", "\x00\x00\x01": "112", "hello world": "StV1DL6CwTryKyV"} {
		if got := encodeBaseX(base58Alphabet, []byte(in)); got != want {
			t.Errorf("base58(%q) = %q, want %q", in, got, want)
		}
	}
}
