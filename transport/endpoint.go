package transport

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
)

// Defaults for the zero values of Config.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout ends a session that has heard nothing for that
	// long: QUIC's idle timeout, and a read deadline on the TCP carrier
	// (idleConn). QUIC counts it from the later of the last packet heard
	// and the first one sent after it, so a peer that crashed (no close
	// sent) is noticed within DefaultKeepAlive+DefaultIdleTimeout, 4.5 s.
	// DefaultKeepAlive keeps a live idle session well inside it: a padded
	// control ping and its pong every period (Session.sendKeepalive), about
	// 250 bytes a second with the ACKs. That is the whole cost, less than
	// pings with a deadline of our own beside QUIC's keepalives; a 2 s
	// outage still leaves the session up.
	DefaultIdleTimeout          = 3500 * time.Millisecond
	DefaultKeepAlive            = time.Second
	DefaultMaxPendingHandshakes = 128
)

// Config configures an Endpoint. The zero value of every duration means its default.
type Config struct {
	Key    identity.PrivateKey
	Listen []string // UDP "host:port" addresses; IPv4 and IPv6 sockets are separate
	// ListenTCP are the TCP carrier's "host:port" addresses (none: no TCP
	// carrier inbound; dialing over TCP works without).
	ListenTCP []string
	// TCPOptional makes a ListenTCP address that cannot be bound a warning
	// instead of an error (for addresses derived from Listen by default).
	TCPOptional bool
	Name        string // sent to peers in the handshake payload
	Instance    uint64 // random per daemon start, sent in the handshake payload
	// Trust maps an initiator's Noise static key to a trusted peer. It is
	// called once per inbound handshake, after message 1.
	Trust func(noiseStatic [32]byte) (identity.PeerID, bool)
	// Refused, if set, hears of every inbound handshake refused because
	// Trust did not know the key (the refusal itself is unchanged). It is
	// called on the handshake's goroutine and must not block.
	Refused func(Refusal)
	// OnHandshake, if set, hears how every handshake ended, inbound and
	// outbound, on either carrier: a Handshake* result and how long the
	// Noise exchange took (0 for HandshakeOverloaded). It is called on the
	// handshake's goroutine and must not block.
	OnHandshake func(result string, d time.Duration)
	Logger      *slog.Logger

	HandshakeTimeout     time.Duration
	IdleTimeout          time.Duration
	KeepAlive            time.Duration
	MaxPendingHandshakes int

	// Shared leaves listening to someone else: Listen opens the sockets but
	// does not listen on them. The owner of the port (discovery's libp2p
	// host) listens for the overlay's ALPN and hands that listener to Serve.
	Shared bool
}

// Endpoint is a node's QUIC endpoint: it listens on its UDP sockets, runs
// the responder handshake for inbound connections and dials peers. Close
// ends everything it started.
type Endpoint struct {
	cfg    Config
	log    *slog.Logger
	noise  handshake.Keypair
	quic   *quic.Config
	srvTLS *tls.Config

	sockets      []Socket
	tcpListeners []net.Listener
	mu           sync.Mutex // guards listeners
	listeners    []Listener

	accepted chan *Session
	adm      *admission

	sessMu    sync.Mutex // guards byLaneKey
	byLaneKey map[[handshake.LaneKeySize]byte]*Session
	// byConn maps every authenticated QUIC connection (each lane of each
	// session) to its session, for the flow-control budget.
	byConn sync.Map // *quic.Conn → *Session

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops and responder handshakes
	once   sync.Once
}

// Listen opens the endpoint's sockets and starts accepting connections.
func Listen(cfg Config) (*Endpoint, error) {
	if cfg.Key.IsZero() {
		return nil, errors.New("transport: no key")
	}
	if cfg.Trust == nil {
		return nil, errors.New("transport: no trust function")
	}
	if len(cfg.Listen) == 0 {
		return nil, errors.New("transport: no listen address")
	}
	setDefaults(&cfg)
	pub, err := cfg.Key.Public().NoisePublic()
	if err != nil {
		return nil, fmt.Errorf("transport: own key: %w", err)
	}
	cert, err := throwawayCert()
	if err != nil {
		return nil, err
	}
	e := &Endpoint{
		cfg:       cfg,
		log:       cfg.Logger,
		noise:     handshake.Keypair{Private: cfg.Key.NoisePrivate(), Public: pub},
		srvTLS:    serverTLS(cert),
		accepted:  make(chan *Session),
		byLaneKey: make(map[[handshake.LaneKeySize]byte]*Session),
		adm: &admission{sources: newSourceLimiter(handshakesPerSecond, handshakeBurst, pendingPerSource),
			maxPending: cfg.MaxPendingHandshakes},
	}
	e.quic = e.quicConfig()
	e.ctx, e.cancel = context.WithCancel(context.Background())
	resetKey := derivedKey(cfg.Key, "p2pd/1 quic stateless reset key")
	tokenKey := derivedKey(cfg.Key, "p2pd/1 quic token key")
	for _, addr := range cfg.Listen {
		uc, err := listenUDP(addr)
		if err != nil {
			e.Close()
			return nil, err
		}
		raiseBuffers(uc, e.log)
		qc := &udpConn{UDPConn: uc}
		tr := &quic.Transport{
			Conn:                qc,
			StatelessResetKey:   (*quic.StatelessResetKey)(&resetKey),
			TokenGeneratorKey:   (*quic.TokenGeneratorKey)(&tokenKey),
			VerifySourceAddress: e.adm.verifySource,
			ConnContext:         e.adm.connContext,
		}
		e.sockets = append(e.sockets, Socket{Network: uc.LocalAddr().Network(), Conn: uc, Transport: tr, quiet: qc})
		if cfg.Shared {
			continue
		}
		ln, err := tr.Listen(e.srvTLS, e.quic)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("transport: listen on %s: %w", addr, err)
		}
		e.Serve(ln)
	}
	for _, addr := range cfg.ListenTCP {
		ln, err := listenTCP(addr)
		if err != nil && cfg.TCPOptional {
			e.log.Warn("TCP carrier not listening; peers whose UDP is blocked cannot reach this node", "err", err,
				"fix", "free the port, or set [node] listen_tcp")
			continue
		}
		if err != nil {
			e.Close()
			return nil, err
		}
		e.tcpListeners = append(e.tcpListeners, ln)
		e.wg.Add(1)
		go e.acceptTCP(ln)
	}
	return e, nil
}

func setDefaults(cfg *Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.MaxPendingHandshakes <= 0 {
		cfg.MaxPendingHandshakes = DefaultMaxPendingHandshakes
	}
}

func (e *Endpoint) quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           e.cfg.HandshakeTimeout,
		MaxIdleTimeout:                 e.cfg.IdleTimeout,
		KeepAlivePeriod:                e.cfg.KeepAlive,
		MaxIncomingStreams:             StreamsPerConn,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     512 << 10,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: initialConnectionWindow,
		MaxConnectionReceiveWindow:     maxConnectionWindow,
		EnableDatagrams:                true,
		AllowConnectionWindowIncrease:  e.AllowWindowIncrease,
		InitialPacketSize:              initialPacketSize,
		// The address tokens peers hand out (NEW_TOKEN): the next dial to
		// the same address presents one and skips the Retry round trip a
		// peer under a handshake flood demands of new sources, and the
		// Retry queue, which drops what does not fit.
		TokenStore: quic.NewLRUTokenStore(tokenOrigins, 2),
		// With QLOGDIR set, every connection writes a qlog file there
		// (for qvis and the like); unset, this costs a getenv per connection.
		Tracer: qlog.DefaultConnectionTracer,
	}
}

// tokenOrigins bounds the peer addresses whose tokens an endpoint keeps.
const tokenOrigins = 1024

// Connection flow-control windows: where each connection starts, and how far
// a session's connections may grow theirs in all (see AllowWindowIncrease).
const (
	initialConnectionWindow = 1 << 20
	maxConnectionWindow     = 64 << 20
)

// initialPacketSize is the UDP payload of the first packets, before path
// MTU discovery finds what the path carries: 1232 bytes fit an IPv6 path of
// the minimum MTU (1280) and any IPv4 path QUIC can use. quic-go's default
// (1280) makes 1308-byte IPv4 packets, which a path of MTU 1280 (tunnels,
// some VPNs) drops without a word, so no handshake would ever complete.
const initialPacketSize = 1232

// derivedKey gives a 32-byte key that is stable across restarts of the same
// node, so that a restarted node's stateless resets end its peers' stale
// connections at once instead of after the idle timeout.
func derivedKey(k identity.PrivateKey, label string) [32]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(k.Ed25519().Seed())
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func listenTCP(addr string) (net.Listener, error) {
	if rest, ok := strings.CutPrefix(addr, "localhost:"); ok {
		addr = "127.0.0.1:" + rest
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("transport: tcp listen address %q: want ip:port", addr)
	}
	// One socket per family, as for UDP: "[::]" alone would be dual-stack
	// and collide with "0.0.0.0" on the same port.
	network := "tcp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "tcp6"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen on tcp %s: %w", addr, err)
	}
	return ln, nil
}

func listenUDP(addr string) (*net.UDPConn, error) {
	if rest, ok := strings.CutPrefix(addr, "localhost:"); ok {
		addr = "127.0.0.1:" + rest
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen address %q: want ip:port", addr)
	}
	network := "udp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "udp6"
	}
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", addr, err)
	}
	return uc, nil
}

// Socket is one of the endpoint's UDP sockets and the QUIC transport on it.
type Socket struct {
	Network   string // the socket's network, as net.Addr.Network reports it ("udp")
	Conn      *net.UDPConn
	Transport *quic.Transport
	quiet     *udpConn // the Transport's view of Conn
}

// Listener yields inbound QUIC connections that negotiated ALPN.
type Listener interface {
	Accept(ctx context.Context) (*quic.Conn, error)
	Close() error
}

// Sockets returns the endpoint's sockets, for sharing the port.
func (e *Endpoint) Sockets() []Socket { return append([]Socket(nil), e.sockets...) }

// ServerTLS returns the TLS configuration inbound overlay connections use.
func (e *Endpoint) ServerTLS() *tls.Config { return e.srvTLS.Clone() }

// QUICConfig returns the endpoint's QUIC configuration.
func (e *Endpoint) QUICConfig() *quic.Config { return e.quic.Clone() }

// Serve accepts overlay connections from ln until the endpoint closes; the
// endpoint owns ln from now on.
func (e *Endpoint) Serve(ln Listener) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx.Err() != nil {
		ln.Close()
		return
	}
	e.listeners = append(e.listeners, ln)
	e.wg.Add(1)
	go e.acceptLoop(ln)
}

// Addrs returns the bound UDP addresses.
func (e *Endpoint) Addrs() []net.Addr {
	out := make([]net.Addr, 0, len(e.sockets))
	for _, s := range e.sockets {
		out = append(out, s.Conn.LocalAddr())
	}
	return out
}

// Accept returns the next inbound session whose handshake completed.
func (e *Endpoint) Accept(ctx context.Context) (*Session, error) {
	select {
	case s := <-e.accepted:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.ctx.Done():
		return nil, ErrClosed
	}
}

func (e *Endpoint) acceptLoop(ln Listener) {
	defer e.wg.Done()
	for {
		conn, err := ln.Accept(e.ctx)
		if err != nil {
			return
		}
		QUICHandshakeDone(conn)
		src := conn.RemoteAddr() // the same address for end, even if the peer moves
		if conn.ConnectionState().TLS.NegotiatedProtocol != ALPN {
			closeQUIC(conn, CodeRefused, "")
			continue
		}
		if !e.adm.sources.begin(src, time.Now()) {
			e.log.Debug("inbound handshake refused: too many from this source", "remote", src.String())
			e.reportOverloaded()
			closeQUIC(conn, CodeRefused, "")
			continue
		}
		p := e.adm.admit(func() { closeQUIC(conn, CodeRefused, "") })
		if p == nil {
			e.adm.sources.end(src)
			e.log.Debug("inbound handshake refused: too many handshakes under way", "remote", src.String())
			e.reportOverloaded()
			closeQUIC(conn, CodeRefused, "")
			continue
		}
		e.wg.Add(1)
		go e.handleInbound(conn, src, p)
	}
}

func (e *Endpoint) handleInbound(conn *quic.Conn, src net.Addr, p *pendingHS) {
	defer e.wg.Done()
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.HandshakeTimeout)
	start := time.Now()
	st, info, err := e.respond(ctx, conn, p)
	e.reportHandshake(start, err)
	cancel()
	e.adm.release(p)
	e.adm.sources.end(src)
	if err != nil {
		e.log.Debug("inbound handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
		closeQUIC(conn, CodeRefused, "")
		return
	}
	if info.join != nil {
		st.CancelRead(0) // a lane's handshake stream has no further use
		st.Close()
		l, err := quicLane(conn)
		if err == nil {
			err = info.join.addLane(l)
		}
		if err != nil {
			e.log.Debug("inbound lane refused", "remote", conn.RemoteAddr().String(), "err", err)
			closeQUIC(conn, CodeRefused, "")
		}
		return
	}
	s, err := newSession(e, conn, st, info, false)
	if err != nil {
		closeQUIC(conn, CodeRefused, "")
		return
	}
	select {
	case e.accepted <- s:
	case <-e.ctx.Done():
		s.Close(CodeGoingAway)
	}
}

// Dial connects to the peer id at addr ("host:port") and runs the handshake.
func (e *Endpoint) Dial(ctx context.Context, id identity.PeerID, addr string) (*Session, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: peer address %q: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.HandshakeTimeout)
	defer cancel()
	conn, st, info, err := e.dialConn(ctx, id, ua, nil)
	if err != nil {
		return nil, err
	}
	s, err := newSession(e, conn, st, info, true)
	if err != nil {
		closeQUIC(conn, CodeRefused, "")
		return nil, err
	}
	return s, nil
}

// dialConn makes a QUIC connection to the peer id at ua and runs the
// initiator's handshake on it; lane, if set, asks the peer to add the
// connection to the session with that lane key.
func (e *Endpoint) dialConn(ctx context.Context, id identity.PeerID, addr net.Addr, lane []byte) (*quic.Conn, *quic.Stream, peerInfo, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil, nil, peerInfo{}, fmt.Errorf("transport: peer address %s is not UDP", addr)
	}
	sock, err := e.socketFor(ua)
	if err != nil {
		return nil, nil, peerInfo{}, err
	}
	start := time.Now()
	conn, err := sock.Transport.Dial(ctx, ua, clientTLS(), e.quic)
	if err != nil {
		if serr := sock.quiet.refusedSince(ua, start); serr != nil {
			return nil, nil, peerInfo{}, fmt.Errorf("transport: dial %s: %w (the network refused the packets: %w)", ua, err, serr)
		}
		return nil, nil, peerInfo{}, fmt.Errorf("transport: dial %s: %w", ua, err)
	}
	hsStart := time.Now()
	st, info, err := e.initiate(ctx, conn, id, lane)
	e.reportHandshake(hsStart, err)
	if err != nil {
		closeQUIC(conn, CodeRefused, "")
		return nil, nil, peerInfo{}, fmt.Errorf("%w with %s at %s: %w", ErrHandshake, id.ShortString(), ua, closeCause(err))
	}
	return conn, st, info, nil
}

// AllowWindowIncrease is quic.Config.AllowConnectionWindowIncrease for
// overlay connections: a connection that has not authenticated never grows
// its flow-control window, and the lanes of one session grow theirs out of
// one budget, so that a session of many connections buffers no more than
// one connection could.
func (e *Endpoint) AllowWindowIncrease(conn *quic.Conn, delta uint64) bool {
	v, ok := e.byConn.Load(conn)
	if !ok {
		return false
	}
	s := v.(*Session)
	if s.window.Add(int64(delta)) <= sessionWindowBudget {
		return true
	}
	s.window.Add(-int64(delta))
	return false
}

// sessionWindowBudget is how far a session's connections together may grow
// their flow-control windows beyond the first one each starts with.
const sessionWindowBudget = maxConnectionWindow - initialConnectionWindow

// register makes s findable by the lanes the peer adds to it.
func (e *Endpoint) register(s *Session) {
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	e.byLaneKey[s.laneKey] = s
	if q := s.lanes0QUIC(); q != nil {
		e.byConn.Store(q, s)
	}
}

func (e *Endpoint) deregister(s *Session) {
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	if e.byLaneKey[s.laneKey] == s {
		delete(e.byLaneKey, s.laneKey)
	}
	if q := s.lanes0QUIC(); q != nil {
		e.byConn.Delete(q)
	}
}

// laneSession returns the live session with the lane key key whose peer is
// id, or nil.
func (e *Endpoint) laneSession(key []byte, id identity.PeerID) *Session {
	if len(key) != handshake.LaneKeySize {
		return nil
	}
	e.sessMu.Lock()
	s := e.byLaneKey[[handshake.LaneKeySize]byte(key)]
	e.sessMu.Unlock()
	if s == nil || s.peer.id != id || s.State() != StateEstablished {
		return nil
	}
	return s
}

func (e *Endpoint) socketFor(ua *net.UDPAddr) (Socket, error) {
	want4 := ua.IP.To4() != nil
	for _, s := range e.sockets {
		la := s.Conn.LocalAddr().(*net.UDPAddr)
		is4 := la.IP.To4() != nil
		if is4 == want4 {
			return s, nil
		}
	}
	return Socket{}, fmt.Errorf("transport: no local socket for %s (listen on an address of that family)", ua)
}

// Close stops accepting, closes the sockets (ending every connection on
// them) and waits for the endpoint's goroutines.
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		if e.cancel != nil {
			e.cancel()
		}
		e.mu.Lock()
		for _, ln := range e.listeners {
			ln.Close()
		}
		e.mu.Unlock()
		for _, ln := range e.tcpListeners {
			ln.Close()
		}
		// The socket closes before its transport: while quic-go tears
		// the connections down it answers a packet for one it has just
		// dropped with a stateless reset, which would tell a peer that
		// this node is back with no session when it is in fact gone.
		for _, s := range e.sockets {
			s.Conn.Close()
			s.Transport.Close()
		}
		e.wg.Wait()
	})
	return nil
}
