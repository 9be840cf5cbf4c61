package transport

import (
	"net"

	"github.com/p2pd/p2pd/handshake"
)

// Refusal is an inbound handshake refused because the initiator's static
// key is not trusted. Message 1 proved that the initiator holds the key (its
// payload decrypts only with the static-static secret) on this very
// connection (the channel binding), so a refusal names a key someone really
// used, not one copied from elsewhere.
type Refusal struct {
	NoiseStatic [32]byte // the initiator's X25519 static key
	Name        string   // the name its payload claims; "" when the payload does not parse
	Remote      net.Addr
	Carrier     string // "quic" or "tcp"
}

// refused reports an untrusted initiator to Config.Refused, if set.
func (e *Endpoint) refused(static [32]byte, payload []byte, remote net.Addr, carrier string) {
	if e.cfg.Refused == nil {
		return
	}
	r := Refusal{NoiseStatic: static, Remote: remote, Carrier: carrier}
	if p, _, err := handshake.ParsePayload(payload); err == nil {
		r.Name = p.Name
	}
	e.cfg.Refused(r)
}
