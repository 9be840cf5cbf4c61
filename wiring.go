package p2pd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/discovery"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// NodeConfig is the node's configuration from cfg: identity, listen
// addresses, trust list and services. Transport.Shared is set when cfg asks
// for discovery (DiscoveryOn).
func NodeConfig(cfg *config.Config, key identity.PrivateKey, log *slog.Logger) node.Config {
	peers, services := Trust(cfg)
	return node.Config{Key: key, Name: cfg.Node.Name, Listen: cfg.Node.Listen, Peers: peers, Services: services, Logger: log,
		SessionIdle: cfg.Node.SessionIdle,
		Transport: transport.Config{ListenTCP: cfg.Node.TCPAddrs(), TCPOptional: cfg.Node.ListenTCP == nil,
			Shared: DiscoveryOn(cfg.Discovery)}}
}

// Trust is cfg's [[peers]] and [[services]] as the node takes them (for
// node.Config and node.Node.Apply).
func Trust(cfg *config.Config) ([]node.Peer, []node.Service) {
	var peers []node.Peer
	for _, p := range cfg.Peers {
		peers = append(peers, node.Peer{Name: p.Name, ID: p.ID, Addresses: p.Addresses, Transport: p.Transport, AlwaysOn: p.AlwaysOn})
	}
	var services []node.Service
	for _, s := range cfg.Services {
		services = append(services, node.Service{Name: s.Name, Target: s.Target, Protocol: s.Protocol, Allow: s.Allow, IdleTimeout: s.IdleTimeout,
			ProxyProtocol: s.ProxyProtocol})
	}
	return peers, services
}

// DiscoveryOn reports whether the config asks for the libp2p host. Without
// it the overlay owns its UDP sockets alone.
func DiscoveryOn(d config.Discovery) bool {
	return d.MDNS || d.DHT || len(d.Bootstrap) > 0 || len(d.Relays) > 0 || d.RelayService
}

// StartDiscovery starts the libp2p host on the node's sockets and feeds its
// records to the node until ctx ends. The returned stop closes it and waits.
func StartDiscovery(ctx context.Context, cfg *config.Config, key identity.PrivateKey, n *node.Node, log *slog.Logger) (*discovery.Discovery, func(), error) {
	if err := os.MkdirAll(cfg.Node.StateDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("state directory: %w", err)
	}
	d, err := discovery.New(discovery.Config{
		Key:          key,
		Endpoint:     n.Endpoint(),
		MDNS:         cfg.Discovery.MDNS,
		DHT:          cfg.Discovery.DHT,
		Bootstrap:    cfg.Discovery.Bootstrap,
		Relays:       cfg.Discovery.Relays,
		RelayService: cfg.Discovery.RelayService,
		Trusted:      n.Trusted,
		StateDir:     cfg.Node.StateDir,
		Logger:       log.With("component", "discovery"),
	})
	if err != nil {
		return nil, nil, err
	}
	n.SetDiscovery(relayer{d})
	d.HandleStreams(func(id identity.PeerID, st *discovery.Stream) { n.ServeRelayed(id, st) })
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case r, ok := <-d.Records():
				if !ok {
					return
				}
				n.AddAddresses(r.Peer, string(r.Source), r.Addrs)
			case <-ctx.Done():
				return
			}
		}
	}()
	stop := func() {
		cancel()
		wg.Wait()
		d.Close()
	}
	return d, stop, nil
}

// relayer adapts discovery to the node's Discovery interface: its
// OpenRelayed returns the libp2p stream, through a circuit relay, that a
// relayed session runs on.
type relayer struct{ *discovery.Discovery }

var _ node.Discovery = relayer{}

func (r relayer) OpenRelayed(ctx context.Context, id identity.PeerID) (net.Conn, error) {
	st, err := r.OpenStream(ctx, id)
	if err != nil {
		return nil, err // a nil interface, not a nil *Stream in one
	}
	return st, nil
}
