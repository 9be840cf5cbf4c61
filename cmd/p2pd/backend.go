package main

import (
	"cmp"
	"context"
	"errors"
	"sort"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/internal/buildinfo"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/proxy"
)

// backend answers the control API from the daemon's parts.
type backend struct{ d *daemon }

func (b backend) Status(context.Context) (control.Status, error) {
	n := b.d.node
	peers := n.Peers()
	connected := 0
	for _, p := range peers {
		if p.State == node.Connected {
			connected++
		}
	}
	var addrs []string
	var dht *control.DHTStatus
	if b.d.disc != nil {
		addrs = b.d.disc.Addrs()
		if rt, conns, ok := b.d.disc.DHTStats(); ok {
			dht = &control.DHTStatus{RoutingTable: rt, Connections: conns}
		}
	}
	return control.Status{
		Addresses: addrs, DHT: dht,
		Config: b.d.path,
		ID:     n.ID().String(), Name: n.Name(), Version: buildinfo.Version, Listen: n.ListenAddrs(),
		StartedAt: n.Started(), UptimeSeconds: time.Since(n.Started()).Seconds(),
		Peers: len(peers), Connected: connected, Services: len(n.Services()), Forwards: len(b.d.fwd.Stats()),
	}, nil
}

func (b backend) Peers(context.Context) ([]control.Peer, error) {
	var out []control.Peer
	for _, p := range b.d.node.Peers() {
		cp := control.Peer{Name: p.Name, ID: p.ID, State: p.State.String(), Addresses: p.Addresses, Endpoint: p.Endpoint, LastError: p.LastError, Sources: p.Sources, Path: p.Path, Relay: p.Relay,
			Carrier: p.Carrier, CarrierReason: p.CarrierReason, DirectReason: p.DirectReason, Origin: b.d.peerOrigin(p.Name)}
		if !p.LastHandshake.IsZero() {
			t := p.LastHandshake
			cp.LastHandshake = &t
		}
		out = append(out, cp)
	}
	return out, nil
}

func (b backend) Sessions(context.Context) ([]control.Session, error) {
	var out []control.Session
	for _, s := range b.d.node.Sessions() {
		out = append(out, control.Session{
			Peer: s.Peer, PeerID: s.PeerID, Remote: s.Remote, Carrier: s.Carrier, Initiator: s.Initiator, State: s.State,
			EstablishedAt: s.Established, AgeSeconds: time.Since(s.Established).Seconds(),
			RTTMillis: float64(s.Stats.RTT.Microseconds()) / 1000, Streams: s.Stats.Streams, Conns: s.Stats.Conns,
			BytesSent: s.Stats.BytesSent, BytesReceived: s.Stats.BytesReceived,
			PacketsSent: s.Stats.PacketsSent, PacketsReceived: s.Stats.PacketsReceived,
			PacketsLost: s.Stats.PacketsLost, GSO: s.Stats.GSO,
		})
	}
	return out, nil
}

func (b backend) Services(context.Context) ([]control.Service, error) {
	var out []control.Service
	for _, s := range b.d.node.Services() {
		out = append(out, control.Service{Name: s.Name, Target: s.Target, Protocol: s.Protocol, Allow: s.Allow, Active: s.Active, Total: s.Total})
	}
	return out, nil
}

func (b backend) Forwards(context.Context) ([]control.Forward, error) {
	var out []control.Forward
	stats := b.d.fwd.Stats()
	sort.Slice(stats, func(i, j int) bool { return stats[i].Listen < stats[j].Listen })
	for _, f := range stats {
		out = append(out, control.Forward{Listen: f.Listen, Protocol: cmp.Or(f.Protocol, proxy.ProtocolTCP), Peer: f.Peer, Service: f.Service, MaxConnections: f.MaxConnections,
			Active: f.Active, Total: f.Total, Refused: f.Refused, AcceptErrors: f.AcceptErrors, Errors: f.Errors})
	}
	return out, nil
}

// Ping pings peer within ctx, whose deadline is the ping's --timeout.
func (b backend) Ping(ctx context.Context, peer string) (control.PingResult, error) {
	rtt, remote, err := b.d.node.Ping(ctx, peer)
	if errors.Is(err, node.ErrUnknownPeer) {
		return control.PingResult{}, notFound{err}
	}
	if err != nil {
		return control.PingResult{}, err
	}
	res := control.PingResult{Peer: peer, RTTMillis: float64(rtt.Microseconds()) / 1000, Remote: remote}
	for _, p := range b.d.node.Peers() { // the path the ping took, as `p2pctl peers` shows it
		if p.Name == peer || p.ID == peer {
			res.Peer, res.Path, res.Relay, res.Carrier = p.Name, p.Path, p.Relay, p.Carrier
		}
	}
	return res, nil
}

func (b backend) Reload(context.Context) error {
	_, err := b.d.reload()
	return err
}

// notFound marks err as control.ErrNotFound for the control API's status
// while its text stays err's own sentence.
type notFound struct{ error }

func (e notFound) Is(target error) bool { return target == control.ErrNotFound }
func (e notFound) Unwrap() error        { return e.error }
