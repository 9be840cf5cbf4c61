package identity

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParsePeerID: an accepted text is one of the two canonical forms of the
// peer ID it names (base36 in either case), and both forms parse back.
func FuzzParsePeerID(f *testing.F) {
	for _, k := range knownKeys {
		f.Add(k.peerID)
		f.Add(k.base36)
		f.Add(strings.ToUpper(k.base36))
		f.Add(k.peerID[:20])
	}
	f.Add("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
	f.Add("k")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParsePeerID(s)
		if err != nil {
			return
		}
		if id.IsZero() {
			t.Fatalf("ParsePeerID(%q) returned the zero PeerID", s)
		}
		if s != id.String() && strings.ToLower(s) != id.Base36() {
			t.Fatalf("ParsePeerID accepted %q, which is neither %s nor %s", s, id.String(), id.Base36())
		}
		for _, form := range []string{id.String(), id.Base36()} {
			if back, err := ParsePeerID(form); err != nil || back != id {
				t.Fatalf("%q does not parse back: %v", form, err)
			}
		}
	})
}

// FuzzParseKeyFile: accepted key file text is the canonical form of the
// key, give or take trailing whitespace and hex case.
func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte("privkey:" + strings.Repeat("01", SeedSize) + "\n"))
	f.Add([]byte("privkey:" + strings.Repeat("AB", SeedSize) + " \r\n"))
	f.Add([]byte("privkey:zz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKeyFile(b)
		if err != nil {
			return
		}
		canon := "privkey:" + strings.ToLower(string(bytes.TrimRight(b, " \t\r\n"))[len("privkey:"):])
		seed := k.Ed25519().Seed()
		if want := keyFilePrefix + hex.EncodeToString(seed); canon != want {
			t.Fatalf("parseKeyFile(%q) = seed %x", b, seed)
		}
	})
}
