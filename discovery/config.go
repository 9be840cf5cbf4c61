package discovery

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// Config configures a Discovery. The zero value of each bool means off; the
// node turns MDNS on by default (config.Discovery).
type Config struct {
	Key identity.PrivateKey
	// Endpoint is the overlay's QUIC endpoint, made with
	// transport.Config.Shared = true: its sockets are shared with the libp2p
	// host and the overlay's listener is handed to its Serve.
	Endpoint *transport.Endpoint

	MDNS bool // find peers on the LAN
	DHT  bool // take part in the private DHT (protocol prefix /p2pd)

	Bootstrap    []string // DHT bootstrap nodes: multiaddrs ending in /p2p/<peer ID>
	Relays       []string // circuit relay v2 nodes: multiaddrs ending in /p2p/<peer ID>
	RelayService bool     // relay for this node's trusted peers

	// Trusted reports whether a peer is in the trust list. It is called on
	// every libp2p connection attempt, from libp2p's goroutines and from
	// within FindPeer, OpenStream and Reload, so it must be fast and safe
	// for concurrent use, and callers of those methods must not hold a lock
	// it takes. It may change its answers at run time; call Reload then.
	Trusted func(identity.PeerID) bool

	// StateDir holds peers.json, the learned addresses. Empty keeps them in
	// memory only.
	StateDir string
	Logger   *slog.Logger
}

// Errors.
var (
	// ErrNotFound reports a peer for which no source knows an address.
	ErrNotFound = errors.New("discovery: peer not found")
	// ErrClosed reports a call after Close.
	ErrClosed = errors.New("discovery: closed")
)

// peerAddrs parses multiaddrs that end in /p2p/<peer ID>, merging the
// addresses of one peer. key names the config list in errors.
func peerAddrs(key string, list []string) ([]peer.AddrInfo, error) {
	var errs []error
	var out []peer.AddrInfo
	index := map[peer.ID]int{}
	for i, s := range list {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("discovery: %s[%d] %q: %v (want a multiaddr ending in /p2p/<peer ID>, e.g. /ip4/192.0.2.1/udp/4242/quic-v1/p2p/12D3KooW...)", key, i, s, err))
			continue
		}
		if j, ok := index[ai.ID]; ok {
			out[j].Addrs = append(out[j].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, errors.Join(errs...)
}

// check validates cfg and fills in defaults.
func (cfg *Config) check() error {
	var errs []error
	if cfg.Key.IsZero() {
		errs = append(errs, errors.New("discovery: no key"))
	}
	if cfg.Endpoint == nil {
		errs = append(errs, errors.New("discovery: no endpoint (the libp2p host shares the overlay's UDP sockets)"))
	}
	if cfg.Trusted == nil {
		errs = append(errs, errors.New("discovery: no trust function"))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}
