package main

import (
	"context"
	"net/netip"
	"time"

	"github.com/p2pd/p2pd/control"
)

// Whois answers p2pctl whois from the node's live target connections.
func (b backend) Whois(_ context.Context, addr netip.AddrPort) ([]control.Connection, error) {
	var out []control.Connection
	for _, c := range b.d.node.Whois(addr) {
		out = append(out, control.Connection{Addr: c.Local.String(), Target: c.Target, Service: c.Service,
			Peer: c.Peer, PeerID: c.PeerID.String(), Since: c.Since, AgeSeconds: time.Since(c.Since).Seconds()})
	}
	return out, nil
}
