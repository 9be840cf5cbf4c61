package discovery

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
)

// DHTPrefix is the protocol prefix of p2pd's private DHT; it keeps it apart
// from the public IPFS DHT (/ipfs/kad/1.0.0).
const DHTPrefix = "/p2pd"

// Bootstrap reconnection: backoff while a bootstrap node is unreachable, a
// slower check while all are connected.
const (
	bootstrapMinBackoff = time.Second
	bootstrapMaxBackoff = time.Minute
	bootstrapCheck      = time.Minute
)

// startDHT starts the DHT in server mode (any node can serve it), with
// only peer routing: no provider or value records are stored.
func (d *Discovery) startDHT() error {
	timeout, err := requestTimeout(dhtRequestTimeout)
	if err != nil {
		return err
	}
	kd, err := dht.New(d.host,
		dht.ProtocolPrefix(DHTPrefix),
		dht.Mode(dht.ModeServer),
		dht.BootstrapPeers(d.boot...),
		dht.DisableProviders(),
		dht.DisableValues(),
		dht.AddressFilter(dhtAddrs),
		timeout,
	)
	if err != nil {
		return fmt.Errorf("discovery: dht: %w", err)
	}
	d.dht = kd
	if len(d.boot) > 0 {
		d.wg.Add(1)
		go d.run(d.bootstrapLoop)
	}
	return nil
}

// maxPeerAddrs bounds the addresses one DHT answer, or one hole-punch
// CONNECT, may give for a peer.
const maxPeerAddrs = 8

// dhtAddrs is the DHT's address filter, run on the addresses an answer
// gives for a peer before they reach the peerstore (which the host dials)
// and on what this node advertises. A DHT peer — trusted, or a bootstrap
// node that need not be — could otherwise name 64 addresses of third
// parties for a peer and have this node send QUIC Initials to each.
func dhtAddrs(addrs []ma.Multiaddr) []ma.Multiaddr { return capAddrs(addrs, maxPeerAddrs) }

// capAddrs drops the direct addresses that cannot be dialled (port 0,
// unspecified, multicast) and keeps at most max of the rest, in order.
func capAddrs(addrs []ma.Multiaddr, max int) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, min(len(addrs), max))
	for _, a := range addrs {
		if len(out) == max {
			break
		}
		if ap, ok := ipPort(a); ok && !dialable(ap) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// bootstrapLoop keeps the host connected to the bootstrap nodes: at once,
// then with exponential backoff while one is unreachable or drops the
// connection (a node that does not trust us yet closes it right after the
// handshake), and every bootstrapCheck while all are connected. After the
// first success it refreshes the routing table so the node learns more of
// the DHT than its bootstrap nodes.
func (d *Discovery) bootstrapLoop(ctx context.Context) {
	sub, err := d.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		d.log.Warn("bootstrap: no connection events; checking on a timer only", "err", err)
	} else {
		defer sub.Close()
	}
	backoff := bootstrapMinBackoff
	refreshed := false
	for {
		missing := 0
		for _, ai := range d.boot {
			if err := d.connectNow(ai); err != nil {
				missing++
				d.log.Debug("bootstrap node unreachable", "peer", ai.ID.String(), "err", err)
			}
		}
		if missing < len(d.boot) && !refreshed {
			refreshed = true
			d.dht.RefreshRoutingTable()
		}
		wait := bootstrapCheck
		if missing > 0 {
			wait, backoff = backoff, min(2*backoff, bootstrapMaxBackoff)
		}
		switch d.waitBootstrap(ctx, sub, jitter(wait)) {
		case waitDone:
			return
		case waitTimer:
			if missing == 0 {
				backoff = bootstrapMinBackoff // stable for a whole check
			}
		case waitLost:
			d.log.Debug("bootstrap node disconnected; reconnecting", "after", backoff.String())
			if !sleep(ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, bootstrapMaxBackoff)
		}
	}
}

type waitResult int

const (
	waitDone  waitResult = iota // ctx ended
	waitTimer                   // the wait passed
	waitLost                    // a bootstrap node disconnected
)

// waitBootstrap waits for d, the end of ctx, or the loss of a connection to a
// bootstrap node (sub may be nil).
func (d *Discovery) waitBootstrap(ctx context.Context, sub event.Subscription, wait time.Duration) waitResult {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var events <-chan any
	if sub != nil {
		events = sub.Out()
	}
	for {
		select {
		case <-ctx.Done():
			return waitDone
		case <-timer.C:
			return waitTimer
		case ev := <-events:
			e, ok := ev.(event.EvtPeerConnectednessChanged)
			if ok && e.Connectedness != network.Connected && d.isBootstrap(e.Peer) {
				return waitLost
			}
		}
	}
}

func (d *Discovery) isBootstrap(p peer.ID) bool {
	for _, ai := range d.boot {
		if ai.ID == p {
			return true
		}
	}
	return false
}

// jitter adds up to 20%, so that nodes restarted together spread out.
func jitter(d time.Duration) time.Duration { return d + rand.N(d/5+1) }

// sleep waits for d or the end of ctx; it reports false for the latter.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// DHTEnabled reports whether the node takes part in the DHT; the host's
// peer store then learns most of what it knows through it.
func (d *Discovery) DHTEnabled() bool { return d.dht != nil }

// FindPeer returns the overlay addresses ("ip:port") of id: those of a live
// libp2p connection and the peerstore's at once; otherwise a DHT lookup
// (when the DHT is on), whose result is also emitted as a Record; otherwise
// what the peerstore and mDNS knew. It returns an error wrapping ErrNotFound
// when no source knows an address.
func (d *Discovery) FindPeer(ctx context.Context, id identity.PeerID) ([]string, error) {
	if d.ctx.Err() != nil {
		return nil, ErrClosed
	}
	pid, err := toPeer(id)
	if err != nil {
		return nil, fmt.Errorf("discovery: find %s: %w", id, err)
	}
	if pid == d.host.ID() {
		return nil, fmt.Errorf("discovery: find %s: that is this node", id)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.ctx, cancel)()

	known := merge(overlayAddrs(d.host.Peerstore().Addrs(pid), dialable), d.sighted(id))
	if live := d.liveAddrs(pid); len(live) > 0 {
		return merge(live, known), nil
	}
	var lookupErr error
	if d.dht != nil {
		ai, live, err := d.lookup(ctx, pid, len(known) > 0)
		if len(live) > 0 {
			return merge(live, known), nil // the peer connected while we looked
		}
		if found := overlayAddrs(ai.Addrs, dialable); err == nil && len(found) > 0 {
			d.em.push(Record{Peer: id, Addrs: found, Source: SourceDHT})
			return merge(found, known), nil
		}
		lookupErr = err
	}
	if len(known) > 0 {
		return known, nil
	}
	if lookupErr != nil {
		return nil, fmt.Errorf("%w: %s: dht lookup: %v", ErrNotFound, id, lookupErr)
	}
	if d.dht == nil {
		return nil, fmt.Errorf("%w: %s (no mDNS announcement or learned address; turn on [discovery] dht or give the peer's addresses)", ErrNotFound, id)
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// knownLookupBudget bounds a DHT lookup for a peer whose addresses the
// peer store holds already: those are tried rather than waiting on a query
// stuck on an unresponsive node (kad-dht gives each request 10 s).
const knownLookupBudget = 2 * time.Second

// lookup runs a DHT lookup of p, which ends early when p connects to this
// host meanwhile (it dialed in: its live addresses are then the answer) or,
// when known, after knownLookupBudget.
func (d *Discovery) lookup(ctx context.Context, p peer.ID, known bool) (peer.AddrInfo, []string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if known {
		ctx, cancel = context.WithTimeout(ctx, knownLookupBudget)
		defer cancel()
	}
	came := make(chan struct{}, 1)
	nb := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == p {
			select {
			case came <- struct{}{}:
			default:
			}
		}
	}}
	d.host.Network().Notify(nb)
	defer d.host.Network().StopNotify(nb)
	type result struct {
		ai  peer.AddrInfo
		err error
	}
	done := make(chan result, 1)
	go func() {
		ai, err := d.dht.FindPeer(ctx, p)
		done <- result{ai, err}
	}()
	var grace <-chan time.Time
	for {
		select {
		case r := <-done:
			return r.ai, nil, r.err
		case <-came:
			// Often the lookup's own connection, as it ends: let it
			// finish and say so; a peer that dialed in is taken after
			// the grace.
			if grace == nil {
				grace = time.After(lookupGrace)
			}
		case <-grace:
			if live := d.liveAddrs(p); len(live) > 0 {
				return peer.AddrInfo{}, live, nil // the lookup is cancelled on return
			}
			grace = nil
		}
	}
}

// lookupGrace is how long a lookup may go on once the peer is connected.
const lookupGrace = 250 * time.Millisecond

// liveAddrs returns the remote overlay addresses of the host's direct
// connections to p (relayed ones have none): the freshest addresses there
// are, since the peer's libp2p host dials from its shared overlay port.
func (d *Discovery) liveAddrs(p peer.ID) []string {
	var out []string
	for _, c := range d.host.Network().ConnsToPeer(p) {
		if ap, ok := overlayAddr(c.RemoteMultiaddr()); ok && dialable(ap) && !slices.Contains(out, ap.String()) {
			out = append(out, ap.String())
		}
	}
	return out
}

// merge appends the elements of b missing from a.
func merge(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// DHTStats reports the size of the DHT's routing table and how many
// connections the libp2p host holds; ok is false when the DHT is off.
func (d *Discovery) DHTStats() (routingTable, conns int, ok bool) {
	if d.dht == nil {
		return 0, 0, false
	}
	return d.dht.RoutingTable().Size(), len(d.host.Network().Conns()), true
}
