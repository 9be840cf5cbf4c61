package handshake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/p2pd/p2pd/identity"
)

// Feature is a capability bit a node announces in its Payload. Values are
// assigned by the packages that use them.
type Feature uint16

// Payload field sizes and limits; the layout diagram is in the package doc.
const (
	ProtocolVersion       = 1   // the version this package writes
	LastCompatibleVersion = 127 // versions 1..127 share this layout
	MaxFeatures           = 32
	MaxNameLen            = 64
	MaxPayloadSize        = 1024 // whole encoding, extension included

	versionSize      = 1
	instanceSize     = 8
	featureCountSize = 1
	featureSize      = 2
	nameLenSize      = 1
	extLenSize       = 2

	// Extension records: a type, a length, the value. Unknown types are
	// skipped, and so are trailing bytes too short to be a record.
	extTypeSize   = 1
	extRecLenSize = 1
	extLane       = 0x01 // Payload.Lane
	// LaneKeySize is the size of Payload.Lane.
	LaneKeySize    = 16
	laneRecordSize = extTypeSize + extRecLenSize + LaneKeySize
	extIdentity    = 0x02 // Payload.Identity
	// IdentityKeySize is the size of Payload.Identity, an Ed25519 public key.
	IdentityKeySize    = identity.PublicKeySize
	identityRecordSize = extTypeSize + extRecLenSize + IdentityKeySize

	// MinPayloadSize is the encoding with no features, no name, no extension.
	MinPayloadSize = versionSize + instanceSize + featureCountSize + nameLenSize + extLenSize // 13
	// maxEncodedSize is the largest encoding AppendBinary writes.
	maxEncodedSize = MinPayloadSize + MaxFeatures*featureSize + MaxNameLen + laneRecordSize + identityRecordSize // 193
)

var (
	// ErrShortPayload reports a payload encoding cut short.
	ErrShortPayload = errors.New("handshake: payload truncated")
	// ErrPayloadTooLarge reports a payload encoding over MaxPayloadSize.
	ErrPayloadTooLarge = errors.New("handshake: payload too large")
	// ErrUnsupportedVersion reports a payload version this package cannot
	// read: 0, or above LastCompatibleVersion.
	ErrUnsupportedVersion = errors.New("handshake: unsupported payload version")
	// ErrInvalidPayload reports a field out of its limits: too many features,
	// or a name too long, not UTF-8 or containing control characters.
	ErrInvalidPayload = errors.New("handshake: invalid payload")
)

// Payload is what each side tells the other inside the handshake. Never
// service data: message 1 can be replayed within its channel binding.
type Payload struct {
	Version  uint8     // highest protocol version the sender speaks; ProtocolVersion
	Features []Feature // at most MaxFeatures
	Name     string    // display name: at most MaxNameLen bytes, UTF-8, no control characters
	Instance uint64    // random per daemon start: tells a restarted peer from a duplicate dial
	// Lane, when set (LaneKeySize bytes), says that this connection is an
	// extra connection of an established session, the one with this lane
	// key, not a session of its own. It travels in ext, which older
	// versions skip.
	Lane []byte
	// Identity, when set (IdentityKeySize bytes), is the sender's Ed25519
	// public key. The Noise static key, its X25519 form, fixes the sender's
	// peer ID only up to a sign bit; Identity names it exactly. Initiators
	// send it in message 1, and the responder checks it with CheckIdentity.
	// It travels in ext, which older versions skip.
	Identity []byte
}

// AppendBinary appends the encoding of p to b. It fails with
// ErrUnsupportedVersion or ErrInvalidPayload when a field is out of its
// limits, and then returns b unchanged.
func (p Payload) AppendBinary(b []byte) ([]byte, error) {
	if err := checkVersion(p.Version); err != nil {
		return b, err
	}
	if len(p.Features) > MaxFeatures {
		return b, errorf(ErrInvalidPayload, "handshake: payload has %d features, over the limit of %d", len(p.Features), MaxFeatures)
	}
	if err := checkName(p.Name); err != nil {
		return b, err
	}
	if len(p.Lane) != 0 && len(p.Lane) != LaneKeySize {
		return b, errorf(ErrInvalidPayload, "handshake: payload lane key is %d bytes, want %d", len(p.Lane), LaneKeySize)
	}
	if len(p.Identity) != 0 && len(p.Identity) != IdentityKeySize {
		return b, errorf(ErrInvalidPayload, "handshake: payload identity key is %d bytes, want %d", len(p.Identity), IdentityKeySize)
	}
	b = append(b, p.Version)
	b = binary.BigEndian.AppendUint64(b, p.Instance)
	b = append(b, byte(len(p.Features)))
	for _, f := range p.Features {
		b = binary.BigEndian.AppendUint16(b, uint16(f))
	}
	b = append(b, byte(len(p.Name)))
	b = append(b, p.Name...)
	ext := 0
	if len(p.Lane) != 0 {
		ext += laneRecordSize
	}
	if len(p.Identity) != 0 {
		ext += identityRecordSize
	}
	b = binary.BigEndian.AppendUint16(b, uint16(ext))
	if len(p.Lane) != 0 {
		b = append(b, extLane, LaneKeySize)
		b = append(b, p.Lane...)
	}
	if len(p.Identity) != 0 {
		b = append(b, extIdentity, IdentityKeySize)
		b = append(b, p.Identity...)
	}
	return b, nil
}

// ParsePayload decodes a payload from the start of b and returns it and the
// number of bytes it used, extension included; bytes after that are left to
// the caller. Of the extension it reads the records it knows (Lane,
// Identity) and skips the rest; it checks only their sizes. It allocates at
// most MaxFeatures features and MaxNameLen bytes of name, whatever the input.
func ParsePayload(b []byte) (Payload, int, error) {
	var p Payload
	if len(b) < MinPayloadSize {
		return Payload{}, 0, short(len(b), MinPayloadSize)
	}
	p.Version = b[0]
	if err := checkVersion(p.Version); err != nil {
		return Payload{}, 0, err
	}
	p.Instance = binary.BigEndian.Uint64(b[versionSize:])
	off := versionSize + instanceSize

	nf := int(b[off])
	off += featureCountSize
	if nf > MaxFeatures {
		return Payload{}, 0, errorf(ErrInvalidPayload, "handshake: payload has %d features, over the limit of %d", nf, MaxFeatures)
	}
	// The fixed fields after the features still need nameLenSize+extLenSize.
	if need := off + nf*featureSize + nameLenSize + extLenSize; len(b) < need {
		return Payload{}, 0, short(len(b), need)
	}
	if nf > 0 {
		p.Features = make([]Feature, nf)
		for i := range p.Features {
			p.Features[i] = Feature(binary.BigEndian.Uint16(b[off:]))
			off += featureSize
		}
	}

	nl := int(b[off])
	off += nameLenSize
	if nl > MaxNameLen {
		return Payload{}, 0, errorf(ErrInvalidPayload, "handshake: payload name is %d bytes, over the limit of %d", nl, MaxNameLen)
	}
	if need := off + nl + extLenSize; len(b) < need {
		return Payload{}, 0, short(len(b), need)
	}
	p.Name = string(b[off : off+nl])
	off += nl
	if err := checkName(p.Name); err != nil {
		return Payload{}, 0, err
	}

	el := int(binary.BigEndian.Uint16(b[off:]))
	off += extLenSize
	n := off + el
	if n > MaxPayloadSize {
		return Payload{}, 0, errorf(ErrPayloadTooLarge, "handshake: payload is %d bytes, over the limit of %d", n, MaxPayloadSize)
	}
	if len(b) < n {
		return Payload{}, 0, short(len(b), n)
	}
	if err := p.parseExt(b[off:n]); err != nil {
		return Payload{}, 0, err
	}
	return p, n, nil
}

// parseExt reads the extension records it knows into p.
func (p *Payload) parseExt(ext []byte) error {
	for len(ext) >= extTypeSize+extRecLenSize {
		typ, n := ext[0], int(ext[1])
		ext = ext[extTypeSize+extRecLenSize:]
		if n > len(ext) {
			return nil // not a record: a later layout's bytes
		}
		val := ext[:n]
		ext = ext[n:]
		switch typ {
		case extLane:
			if n != LaneKeySize {
				return errorf(ErrInvalidPayload, "handshake: payload lane key is %d bytes, want %d", n, LaneKeySize)
			}
			p.Lane = append([]byte(nil), val...)
		case extIdentity:
			if n != IdentityKeySize {
				return errorf(ErrInvalidPayload, "handshake: payload identity key is %d bytes, want %d", n, IdentityKeySize)
			}
			p.Identity = append([]byte(nil), val...)
		}
	}
	return nil
}

// CheckIdentity checks p.Identity against static, the X25519 key the
// handshake proved the sender holds, and returns the sender's peer ID. It
// returns the zero PeerID when p has no identity record (older nodes send
// none). A key that is not a usable Ed25519 key, or whose X25519 form is not
// static, is ErrInvalidPayload: the handshake has failed, as with any payload
// that does not parse.
func (p Payload) CheckIdentity(static [KeySize]byte) (identity.PeerID, error) {
	if len(p.Identity) == 0 {
		return identity.PeerID{}, nil
	}
	if len(p.Identity) != IdentityKeySize {
		return identity.PeerID{}, errorf(ErrInvalidPayload, "handshake: payload identity key is %d bytes, want %d", len(p.Identity), IdentityKeySize)
	}
	pub := identity.PublicKey(p.Identity)
	if nk, err := pub.NoisePublic(); err != nil || nk != static {
		return identity.PeerID{}, errorf(ErrInvalidPayload, "handshake: payload identity key %x is not the sender's static key", p.Identity)
	}
	return pub.PeerID(), nil
}

func short(have, need int) error {
	return errorf(ErrShortPayload, "handshake: payload is %d bytes, its fields need %d", have, need)
}

func checkVersion(v uint8) error {
	switch {
	case v == 0:
		return errorf(ErrUnsupportedVersion, "handshake: payload version 0 is invalid (versions start at 1)")
	case v > LastCompatibleVersion:
		return errorf(ErrUnsupportedVersion, "handshake: payload version %d uses a layout this node cannot read (it reads versions 1 to %d); upgrade p2pd", v, LastCompatibleVersion)
	}
	return nil
}

func checkName(name string) error {
	if len(name) > MaxNameLen {
		return errorf(ErrInvalidPayload, "handshake: payload name is %d bytes, over the limit of %d", len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return errorf(ErrInvalidPayload, "handshake: payload name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return errorf(ErrInvalidPayload, "handshake: payload name %q contains control character %U", name, r)
		}
	}
	return nil
}

// String describes p for logs.
func (p Payload) String() string {
	return fmt.Sprintf("v%d name=%q instance=%016x features=%v", p.Version, p.Name, p.Instance, p.Features)
}
