package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// Defaults for the zero values of Config.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultTargetTimeout = 10 * time.Second
	DefaultDrainTimeout  = 5 * time.Second
	minBackoff           = 500 * time.Millisecond
	maxBackoff           = 30 * time.Second
)

// Peer is a trusted peer.
type Peer struct {
	Name      string
	ID        identity.PeerID
	Addresses []string // "host:port": UDP for QUIC, TCP at the same port number
	// Transport is "auto" (or ""): QUIC, and TCP when QUIC has not
	// completed within HappyEyeballsDelay; "quic" or "tcp": that one only.
	Transport string
	// AlwaysOn keeps a session to the peer at all times (the maintainer
	// redials it). Without it a session opens when something uses the peer
	// and closes after Config.SessionIdle without streams (idle.go).
	AlwaysOn bool
}

// Service is a local target that peers may reach.
type Service struct {
	Name     string
	Target   string // "host:port", "unix:/path" or "inproc:NAME" (see Config.DialInProc)
	Protocol string // "tcp" (the default) or "udp"
	Allow    []string
	// IdleTimeout ends a udp flow after that long without a datagram;
	// 0 means DefaultFlowIdle.
	IdleTimeout time.Duration
	// ProxyProtocol is "" (off) or ProxyProtocolV2: each connection to the
	// target opens with a PROXY protocol v2 header (proxyproto.go).
	ProxyProtocol string
}

// Config configures a Node.
type Config struct {
	Key      identity.PrivateKey
	Name     string
	Listen   []string
	Peers    []Peer
	Services []Service
	Logger   *slog.Logger

	HeaderTimeout time.Duration // for a stream's request and response headers
	// SessionIdle closes a session to a peer that is not AlwaysOn after
	// that long without streams; 0 means DefaultSessionIdle.
	SessionIdle   time.Duration
	TargetTimeout time.Duration // for connecting to a service's target
	// MaxStreamsPerPeer bounds one peer's live inbound streams (default
	// DefaultMaxStreamsPerPeer); see limits.go.
	MaxStreamsPerPeer int
	// DialInProc connects the peer's stream or flow to the in-process
	// listener NAME of a service whose target is "inproc:NAME" (package
	// p2pd's Server.Listen and ListenPacket). For a tcp service the conn
	// must support CloseWrite (a half-close); for a udp service each Write
	// is one datagram from the peer and each Read one to it. Nil: such
	// targets are refused.
	DialInProc func(ctx context.Context, name string, peer identity.PeerID) (net.Conn, error)
	// Transport tunes the QUIC endpoint; Key, Name, Listen, Trust and
	// Logger are filled in by the node.
	Transport transport.Config
}

// Node is a running p2pd core.
type Node struct {
	cfg      Config
	id       identity.PeerID
	log      *slog.Logger
	ep       *transport.Endpoint
	started  time.Time
	instance uint64

	mu       sync.Mutex // guards peers, byNoise, services
	peers    map[identity.PeerID]*peer
	byName   map[string]*peer
	byNoise  map[[32]byte]identity.PeerID
	services map[string]*service
	disc     Discovery // nil without discovery
	running  bool      // Run has started the maintainers
	draining bool      // shutdown has begun: no new sessions

	pending  pendingTable // keys refused recently (pending.go); has its own lock
	conns    targetConns  // live target connections for Whois (whois.go); has its own lock
	flows    flowSet      // live inbound udp flows (flow.go); has its own lock
	counters counters     // stream and byte counters for metrics (metrics.go); has its own lock

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node starts
}

// New binds the node's sockets. Run starts it.
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.TargetTimeout <= 0 {
		cfg.TargetTimeout = DefaultTargetTimeout
	}
	if cfg.MaxStreamsPerPeer <= 0 {
		cfg.MaxStreamsPerPeer = DefaultMaxStreamsPerPeer
	}
	n := &Node{cfg: cfg, id: cfg.Key.PeerID(), log: cfg.Logger, started: time.Now()}
	var ib [8]byte
	rand.Read(ib[:])
	n.instance = binary.BigEndian.Uint64(ib[:])
	if err := n.apply(cfg.Peers, cfg.Services); err != nil {
		return nil, err
	}
	tc := cfg.Transport
	tc.Key, tc.Name, tc.Listen, tc.Instance, tc.Logger = cfg.Key, cfg.Name, cfg.Listen, n.instance, cfg.Logger
	tc.Trust, tc.Refused = n.trustNoise, n.refused
	ep, err := transport.Listen(tc)
	if err != nil {
		return nil, err
	}
	n.ep = ep
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// ID returns the node's peer ID.
func (n *Node) ID() identity.PeerID { return n.id }

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Started returns when the node was created.
func (n *Node) Started() time.Time { return n.started }

// Endpoint returns the node's QUIC endpoint, for discovery to share its port.
func (n *Node) Endpoint() *transport.Endpoint { return n.ep }

// ListenAddrs returns the bound UDP addresses.
func (n *Node) ListenAddrs() []string {
	var out []string
	for _, a := range n.ep.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// Run accepts sessions and keeps peers with known addresses connected until
// ctx ends; then it drains and closes. It returns nil after an orderly stop.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	n.running = true
	for _, p := range n.peers {
		n.startMaintainer(p)
	}
	n.mu.Unlock()
	n.wg.Add(2)
	go n.acceptLoop()
	go n.reapIdle()
	select {
	case <-ctx.Done():
	case <-n.ctx.Done():
	}
	n.shutdown(DefaultDrainTimeout)
	return nil
}

func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		s, err := n.ep.Accept(n.ctx)
		if err != nil {
			return
		}
		n.adopt(s)
	}
}

// shutdown tells every peer this node is going away and gives each session
// up to drain to finish its streams in both directions (so nothing in
// flight is cut), then closes everything. New sessions are refused from the
// start; streams the peers opened before they heard are still served.
func (n *Node) shutdown(drain time.Duration) {
	n.mu.Lock()
	n.draining = true
	var sessions []*transport.Session
	for _, p := range n.peers {
		if s := p.current(); s != nil {
			sessions = append(sessions, s)
		}
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.GoAway(ctx)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		n.log.Warn("drain timed out; closed sessions with streams still open")
	}
	cancel()
	n.cancel()
	// Discovery's libp2p host shares the endpoint's sockets: it stops first.
	if d := n.discovery(); d != nil {
		d.Close()
	}
	n.ep.Close()
	n.wg.Wait()
}

// Close stops the node at once (no drain). It is for tests and error paths.
func (n *Node) Close() {
	if n.cancel != nil {
		n.cancel()
	}
	n.ep.Close()
	n.wg.Wait()
}

// ErrUnknownPeer reports a peer name or ID that is not in the trust list.
var ErrUnknownPeer = errors.New("node: unknown peer")

func (n *Node) lookup(nameOrID string) (*peer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.byName[nameOrID]; ok {
		return p, nil
	}
	id, err := identity.ParsePeerID(nameOrID)
	if err == nil {
		if p, ok := n.peers[id]; ok {
			return p, nil
		}
	} else if looksLikePeerID(nameOrID) {
		return nil, fmt.Errorf("%w: %w", ErrUnknownPeer, err) // a malformed ID, not a name
	}
	return nil, fmt.Errorf("%w %q (not in [[peers]])", ErrUnknownPeer, nameOrID)
}

func (n *Node) trustNoise(k [32]byte) (identity.PeerID, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id, ok := n.byNoise[k]
	return id, ok
}
