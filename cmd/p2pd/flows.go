package main

import (
	"context"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/proxy"
)

// Flows answers p2pctl flows: the local clients' flows (udp forwards and
// SOCKS5 UDP associations), then the peers' flows to udp services here.
func (b backend) Flows(context.Context) ([]control.Flow, error) {
	now := time.Now()
	var out []control.Flow
	local := append(b.d.fwd.Flows(), b.d.prx.Flows()...)
	for _, f := range local {
		out = append(out, outFlow(f, now))
	}
	for _, f := range b.d.node.Flows() {
		carrier := "stream"
		if f.Stats.Datagrams {
			carrier = "datagram"
		}
		out = append(out, control.Flow{Direction: "in", Target: f.Target, Peer: f.Peer, Service: f.Service,
			Carrier: carrier, Sent: f.Stats.Sent, Received: f.Stats.Received, Dropped: f.Stats.Dropped,
			Since: f.Since, IdleSeconds: now.Sub(f.Stats.LastActive).Seconds()})
	}
	return out, nil
}

func outFlow(f proxy.FlowStats, now time.Time) control.Flow {
	return control.Flow{Direction: "out", Listener: f.Listener, Client: f.Client, Peer: f.Peer, Service: f.Service,
		Sent: f.Sent, Received: f.Received, Dropped: f.Dropped, Since: f.Since, IdleSeconds: now.Sub(f.LastActive).Seconds()}
}
