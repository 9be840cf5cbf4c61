package identity

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Byte layout of a peer ID; see the package doc.
const (
	keyProtobufPrefix = "\x08\x01\x12\x20"                     // KeyType = Ed25519 (field 1), Data (field 2), length 32
	keyProtobufSize   = len(keyProtobufPrefix) + PublicKeySize // 36
	multihashPrefix   = "\x00\x24"                             // identity hash function, digest length 36
	multihashSize     = len(multihashPrefix) + keyProtobufSize // 38
	cidPrefix         = "\x01\x72"                             // CID version 1, multicodec libp2p-key
	cidSize           = len(cidPrefix) + multihashSize         // 40

	peerIDPrefix    = multihashPrefix + keyProtobufPrefix // bytes before the key in the multihash
	base36Multibase = 'k'                                 // multibase code of base36 lower case
	shortLen        = 6                                   // characters kept by ShortString
)

// ErrInvalidPeerID reports text that is not an Ed25519 libp2p peer ID.
var ErrInvalidPeerID = errors.New("identity: invalid peer id")

// PeerID names a node: the libp2p peer ID of its Ed25519 public key. PeerID is
// comparable and usable as a map key; its zero value means "no peer".
type PeerID struct {
	key PublicKey
}

// ParsePeerID parses a peer ID in either text form: base58btc ("12D3KooW…",
// as libp2p prints it) or a base36 CIDv1 ("k51…", case-insensitive). It
// rejects anything else, including valid libp2p peer IDs of other key types
// and Ed25519 keys that are not usable points (see ErrWeakKey).
func ParsePeerID(s string) (PeerID, error) {
	id, err := parsePeerID(s)
	if err != nil {
		return PeerID{}, &sentinelError{msg: fmt.Sprintf("identity: peer id %s: %v", quoteInput(s), err), sentinel: ErrInvalidPeerID, cause: err}
	}
	return id, nil
}

// quoteInput quotes s for an error message, shortened when it is far longer
// than any peer id.
func quoteInput(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

func parsePeerID(s string) (PeerID, error) {
	switch {
	case s == "":
		return PeerID{}, errors.New("empty")
	case len(s) > maxBaseXLen:
		return PeerID{}, fmt.Errorf("%d characters is too long for a peer id", len(s))
	}
	var mh []byte
	if s[0] == 'k' || s[0] == 'K' {
		if i := strings.IndexFunc(strings.ToLower(s[1:]), notIn(base36Alphabet)); i >= 0 {
			return PeerID{}, fmt.Errorf("character %q at position %d is not base36 (a CIDv1 peer id is \"k\" followed by 0-9 and a-z)", s[1+i], 2+i)
		}
		if len(s) != base36IDLen {
			return PeerID{}, lengthError(len(s), base36IDLen, "base36", "k51")
		}
		b, err := decodeBaseX(base36Alphabet, strings.ToLower(s[1:]))
		if err != nil {
			return PeerID{}, errors.New("not base36 (a CIDv1 peer id is \"k\" followed by 0-9 and a-z)")
		}
		if len(b) != cidSize || string(b[:len(cidPrefix)]) != cidPrefix {
			return PeerID{}, errors.New("not a CIDv1 with codec libp2p-key holding an Ed25519 key")
		}
		mh = b[len(cidPrefix):]
	} else {
		if i := strings.IndexFunc(s, notIn(base58Alphabet)); i >= 0 {
			return PeerID{}, fmt.Errorf("character %q at position %d is not base58 (which has no 0, O, I or l; a peer id is \"12D3KooW…\" or \"k51…\")", s[i], 1+i)
		}
		if len(s) != base58IDLen && strings.HasPrefix(s, "12D3KooW") {
			return PeerID{}, lengthError(len(s), base58IDLen, "base58", "12D3KooW")
		}
		b, err := decodeBaseX(base58Alphabet, s)
		if err != nil {
			return PeerID{}, errors.New("neither base58btc (\"12D3KooW…\") nor base36 (\"k51…\")")
		}
		mh = b
	}
	if len(mh) != multihashSize || string(mh[:len(peerIDPrefix)]) != peerIDPrefix {
		return PeerID{}, errors.New("not an Ed25519 peer id (p2pd peer ids start with 12D3KooW or k51)")
	}
	id := PeerID{key: PublicKey(mh[len(peerIDPrefix):])}
	if _, err := id.key.check(); err != nil {
		return PeerID{}, &sentinelError{msg: "its key is not a usable Ed25519 public key (invalid or small-order point)", sentinel: ErrWeakKey}
	}
	return id, nil
}

// Text lengths of an Ed25519 peer ID.
const (
	base58IDLen = 52 // "12D3KooW" and 44 more
	base36IDLen = 62 // "k51" and 59 more
)

// notIn returns a test for runes outside alphabet.
func notIn(alphabet string) func(rune) bool {
	return func(r rune) bool { return !strings.ContainsRune(alphabet, r) }
}

// lengthError says how far a peer id's length is off, which is what a
// paste that lost or doubled characters looks like.
func lengthError(got, want int, base, prefix string) error {
	off, what := want-got, "short"
	if got > want {
		off, what = got-want, "long"
	}
	chars := "characters"
	if off == 1 {
		chars = "character"
	}
	return fmt.Errorf("%d %s too %s: a %s peer id (%s…) has %d characters, this has %d", off, chars, what, base, prefix, want, got)
}

// multihash returns the 38-byte binary peer ID.
func (id PeerID) multihash() []byte {
	b := make([]byte, 0, multihashSize)
	b = append(b, peerIDPrefix...)
	return append(b, id.key[:]...)
}

// String returns the peer ID in base58btc ("12D3KooW…"), identical to
// libp2p's peer.ID.String(). The zero PeerID returns "".
func (id PeerID) String() string {
	if id.IsZero() {
		return ""
	}
	return encodeBaseX(base58Alphabet, id.multihash())
}

// Base36 returns the peer ID as a CIDv1 (codec libp2p-key) in multibase base36
// lower case ("k51…"), identical to libp2p's
// peer.ToCid(id).Encode(multibase base36). It fits a DNS label and survives
// lower-casing. The zero PeerID returns "".
func (id PeerID) Base36() string {
	if id.IsZero() {
		return ""
	}
	b := make([]byte, 0, cidSize)
	b = append(b, cidPrefix...)
	b = append(b, id.multihash()...)
	return string(base36Multibase) + encodeBaseX(base36Alphabet, b)
}

// ShortString returns the last 6 characters of String, for logs; "none" for
// the zero PeerID.
func (id PeerID) ShortString() string {
	if id.IsZero() {
		return "none"
	}
	s := id.String()
	return s[len(s)-shortLen:]
}

// PublicKey returns the Ed25519 public key that id names.
func (id PeerID) PublicKey() PublicKey { return id.key }

// IsZero reports whether id is the zero PeerID ("no peer").
func (id PeerID) IsZero() bool { return id.key == PublicKey{} }

// Less orders peer IDs by their raw public keys: it reports whether
// bytes.Compare(id's key, o's key) < 0. When two nodes dial each other at
// once, the session initiated by the Less peer survives. Both sides compute
// the same answer because it depends on the keys only, not on a text form.
func (id PeerID) Less(o PeerID) bool { return bytes.Compare(id.key[:], o.key[:]) < 0 }

// MarshalText returns String(); the zero PeerID marshals as empty text.
func (id PeerID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses text as ParsePeerID does; empty text gives the zero
// PeerID, so that MarshalText and UnmarshalText round-trip every value.
func (id *PeerID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*id = PeerID{}
		return nil
	}
	p, err := ParsePeerID(string(text))
	if err != nil {
		return err
	}
	*id = p
	return nil
}
