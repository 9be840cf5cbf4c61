package transport

import (
	"net"

	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
)

// Refusal is an inbound handshake refused because the initiator's static
// key is not trusted. Message 1 proved that the initiator holds the key (its
// payload decrypts only with the static-static secret) on this very
// connection (the channel binding), so a refusal names a key someone really
// used, not one copied from elsewhere.
//
// PeerID is the initiator's exact peer ID: the Ed25519 key its payload
// states, checked to be the one behind NoiseStatic (only the key's holder
// can have sent it). It is zero when the payload carries no such key (an
// older node), and then NoiseStatic fixes the peer ID only up to a sign bit.
type Refusal struct {
	NoiseStatic [32]byte        // the initiator's X25519 static key
	PeerID      identity.PeerID // its exact peer ID; zero when its payload does not say
	Name        string          // the name its payload claims; "" when the payload does not parse
	Remote      net.Addr
	Carrier     string // CarrierQUIC, CarrierTCP, CarrierRelayed or CarrierLibp2p
}

// refused reports an untrusted initiator to Config.Refused, if set. A
// payload that did not pass readHello reports neither name nor peer ID.
func (e *Endpoint) refused(static [32]byte, hello handshake.Payload, id identity.PeerID, remote net.Addr, carrier string) {
	if e.cfg.Refused == nil {
		return
	}
	e.cfg.Refused(Refusal{NoiseStatic: static, PeerID: id, Name: hello.Name, Remote: remote, Carrier: carrier})
}
