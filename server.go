// Package p2pd embeds a p2pd node in a Go program, in the manner of
// Tailscale's tsnet: a Server joins the overlay with its own key and trust
// list, dials services on trusted peers (Dial, DialUDP) and serves
// in-process services to them (Listen, ListenPacket), without a daemon or
// a control socket.
//
// `p2pd run` is a Server too: cmd/p2pd starts one with the config file's
// Config and its own Key, and builds its forwards, SOCKS5/HTTP proxies,
// control socket and metrics on Server.Node; Close is its shutdown (drain,
// then discovery, then the sockets, in node's shutdown). The package also
// holds the wiring both share: the node's configuration from a config file
// (NodeConfig, Trust) and the discovery host (StartDiscovery).
//
// Lifecycle: Start (or the first Dial or Listen) brings the node up; Close
// drains the sessions (the listeners still serve the streams the peers
// opened before), then closes the listeners and waits for every goroutine
// the Server started. A Server cannot be restarted.
package p2pd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/discovery"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/node"
)

// ErrServerClosed is returned by Start, Dial, DialUDP, Listen and ListenPacket
// after Close.
var ErrServerClosed = errors.New("p2pd: server closed")

// Server is an embedded p2pd node. Set its fields before Start; they are
// not read again afterwards.
type Server struct {
	// Config is the node's configuration, as `p2pd run` reads it from a
	// file (its forwards, [proxy] and control socket are not used). Nil
	// means config.Default(): what `p2pd run` does without a config file.
	// The key at Config.Node.KeyFile is created when there is none.
	Config *config.Config
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Key, when set, is the node's key, and Start reads no key file (a
	// program that keeps its key elsewhere; cmd/p2pd, which loads the key
	// file with its own checks and messages).
	Key identity.PrivateKey
	// Tune, when set, may change the node's configuration before the node
	// is made (cmd/p2pd adds its metrics hooks there).
	Tune func(*node.Config)

	mu        sync.Mutex // guards every field below
	started   bool
	closed    bool
	cfg       *config.Config
	node      *node.Node
	disc      *discovery.Discovery      // nil without discovery
	listeners map[string]inprocListener // in-process services by name
	stopDisc  func()                    // nil without discovery
	cancel    context.CancelFunc        // ends the node's Run
	done      chan struct{}             // closed when Run has returned
}

// Start brings the node up: it loads or creates the key, binds the listen
// addresses and starts discovery when the config asks for it. It is
// idempotent; Dial and Listen call it.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

func (s *Server) startLocked() error {
	switch {
	case s.closed:
		return ErrServerClosed
	case s.started:
		return nil
	}
	cfg := s.Config
	if cfg == nil {
		cfg = config.Default()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := s.Key
	if key.IsZero() {
		var err error
		if key, _, err = identity.LoadOrCreateKeyFile(cfg.Node.KeyFile); err != nil {
			return fmt.Errorf("p2pd: key: %w", err)
		}
	}
	ncfg := NodeConfig(cfg, key, log)
	ncfg.DialInProc = s.dialInProc
	if s.Tune != nil {
		s.Tune(&ncfg)
	}
	n, err := node.New(ncfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if ncfg.Transport.Shared {
		disc, stop, err := StartDiscovery(ctx, cfg, key, n, log)
		if err != nil {
			cancel()
			n.Close()
			return err
		}
		s.disc, s.stopDisc = disc, stop
	}
	s.cfg, s.node, s.cancel, s.done = cfg, n, cancel, make(chan struct{})
	s.listeners = make(map[string]inprocListener)
	s.started = true
	go func() {
		defer close(s.done)
		n.Run(ctx)
	}()
	return nil
}

// ID returns the node's peer ID, or "" before Start.
func (s *Server) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node == nil {
		return ""
	}
	return s.node.ID().String()
}

// Addrs returns the bound UDP addresses ("host:port"), which peers put in
// their [[peers]] addresses; nil before Start.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node == nil {
		return nil
	}
	return s.node.ListenAddrs()
}

// Dial connects to service on peer (a [[peers]] name or a peer ID),
// dialing the peer first if there is no session. It returns once the
// service has answered: a refusal (unknown service, access denied, target
// down) is the error.
func (s *Server) Dial(ctx context.Context, peer, service string) (net.Conn, error) {
	n, err := s.running()
	if err != nil {
		return nil, err
	}
	c, err := n.DialServiceAnswered(ctx, peer, service)
	if err != nil {
		return nil, err
	}
	return newStreamConn(c, addr(n.ID().String()+"/"+service), addr(peer+"/"+service)), nil
}

// Close drains the node's sessions (up to node.DefaultDrainTimeout) while
// the listeners still serve, waits for the node to stop, then closes every
// listener. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if started {
		s.cancel()
		<-s.done // the drain serves in-process services too
		if s.stopDisc != nil {
			s.stopDisc()
		}
	}
	s.mu.Lock()
	for _, l := range s.listeners {
		l.base().shut()
	}
	s.listeners = nil
	s.mu.Unlock()
	return nil
}

// Node returns the running node, nil before Start: cmd/p2pd builds its
// forwards, proxies and control API on it.
func (s *Server) Node() *node.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node
}

// Discovery returns the node's libp2p discovery, nil before Start or when
// the config turns every source off.
func (s *Server) Discovery() *discovery.Discovery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disc
}

// running starts the Server if needed and returns its node.
func (s *Server) running() (*node.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		return nil, err
	}
	return s.node, nil
}

// addr is a net.Addr on the overlay: "peer/service".
type addr string

func (a addr) Network() string { return "p2pd" }
func (a addr) String() string  { return string(a) }
