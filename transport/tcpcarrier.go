package transport

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
	"github.com/quic-go/quic-go"
)

// The TCP carrier: after the handshake (tcp.go) a session is yamux over
// the Noise records (noiseconn.go). The initiator opens the first yamux
// stream as the session's control stream; every later stream is one proxied
// connection, with the same request and response headers as on QUIC.
// Closing with a code sends yamux's GoAway with that code, so the peer
// learns it as on QUIC.
//
// Lanes: one TCP connection has one send loop, which seals and writes
// every record of the session on one core; that held bulk over 8 streams
// below stunnel's, which runs a thread per connection. So a TCP session
// may add connections (lanes, as on QUIC, lane.go), for throughput rather
// than for stream limits: the session's initiator (the responder may not be
// reachable) adds one with the session's first stream, up to tcpLanes, and
// new streams go to the lane with the fewest open. The responder takes at
// most tcpMaxLanes per session, and tcpMaxStreams of the peer's streams on
// all of them together (admitInbound, lane.go). An extra
// lane's handshake carries the session's lane key, derived from the first
// connection's handshake secret (tcpLaneKey); its id, the same on both
// sides, from its own (tcpLaneID). Extra lanes keep themselves alive with
// yamux's pings: the control stream's run on the first lane only. A
// relayed session has its one stream and no lanes.
const (
	tcpLanes        = 2
	tcpMaxLanes     = 4
	tcpLaneKeyLabel = "p2pd/1 tcp lane key"
	tcpLaneIDLabel  = "p2pd/1 tcp lane id"

	// tcpWindowBudget bounds what one session's yamux streams, on all its
	// lanes, may buffer in all, as sessionWindowBudget does for QUIC.
	tcpWindowBudget = maxConnectionWindow
	// tcpMaxStreams bounds a TCP session's concurrent streams from the
	// peer: yamux applies it to each connection, admitInbound (lane.go) to
	// the session's lanes together. It is lower than QUIC's
	// MaxLanes*StreamsPerConn because yamux has no connection-wide window:
	// every stream starts with a receive window of at least 256 KiB (yamux's
	// floor), which a peer may fill and leave unread behind a slow target.
	// So what a peer can make a TCP session buffer is at most
	// tcpMaxStreams*256 KiB + tcpWindowBudget = 320 MiB (QUIC: 128
	// connections of 1 MiB + the 63 MiB growth budget, 191 MiB).
	tcpMaxStreams = 1024
)

// tcpSessionStreams is the bound admitInbound applies, tcpMaxStreams;
// tests lower it.
var tcpSessionStreams atomic.Int64

func init() { tcpSessionStreams.Store(tcpMaxStreams) }

// yamuxStream is a yamux stream as a rawStream. A read that fails because
// the session ended records why on the carrier first, so that whoever
// reads the error finds the session's cause already set.
type yamuxStream struct {
	*yamux.Stream
	c *tcpCarrier
}

func (s yamuxStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if err != nil {
		s.c.observe(err)
	}
	return n, err
}

func (s yamuxStream) Close() error                  { return s.Stream.CloseWrite() }
func (s yamuxStream) CancelRead(StreamCode)         { s.Stream.CloseRead() }
func (s yamuxStream) CancelWrite(c StreamCode)      { s.Stream.ResetWithError(uint32(c)) }
func (s yamuxStream) StreamID() quic.StreamID       { return quic.StreamID(s.Stream.StreamID()) }
func (s yamuxStream) SetDeadline(t time.Time) error { return s.Stream.SetDeadline(t) }

// tcpCarrier is a yamux session over a Noise-encrypted TCP connection, or
// over a relayed libp2p stream (relayed.go): name says which.
type tcpCarrier struct {
	name   string // CarrierTCP, CarrierRelayed or CarrierLibp2p
	ys     *yamux.Session
	nc     *noiseConn
	budget *windowBudget // the session's, shared by its lanes
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newTCPCarrier(name string, nc *noiseConn, ys *yamux.Session, budget *windowBudget) *tcpCarrier {
	c := &tcpCarrier{name: name, ys: ys, nc: nc, budget: budget}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	go c.watch()
	return c
}

// watch ends the carrier's context when yamux's session ends, with the
// reason: the peer's close code, or the connection's error.
func (c *tcpCarrier) watch() {
	<-c.ys.CloseChan()
	for {
		st, err := c.ys.AcceptStream() // after the end: the end's error
		if err == nil {
			st.Reset()
			continue
		}
		c.cancel(closeReason(err))
		return
	}
}

// observe ends the carrier's context when err says the peer closed the
// session with a code.
func (c *tcpCarrier) observe(err error) {
	if _, ok := errors.AsType[*yamux.GoAwayError](err); ok {
		c.cancel(closeReason(err))
	}
}

// closeReason turns the error a yamux session ended with into a CloseError
// where it can.
func closeReason(err error) error {
	var ga *yamux.GoAwayError
	switch {
	case errors.As(err, &ga):
		return &CloseError{Code: CloseCode(ga.ErrorCode), Remote: ga.Remote}
	case errors.Is(err, io.EOF) || errors.Is(err, yamux.ErrSessionShutdown):
		return &CloseError{Code: CodeNormal, Remote: true}
	}
	return err
}

func (c *tcpCarrier) OpenStream() (rawStream, error) { return c.OpenStreamSync(context.Background()) }

func (c *tcpCarrier) OpenStreamSync(ctx context.Context) (rawStream, error) {
	st, err := c.ys.OpenStream(ctx)
	if err != nil {
		return nil, c.errOr(err)
	}
	return yamuxStream{st, c}, nil
}

// AcceptStream waits for the peer's next stream until the session ends; it
// cannot be cancelled otherwise (yamux's accept takes no context), so the
// session reads it from a goroutine of its own.
func (c *tcpCarrier) AcceptStream(context.Context) (rawStream, error) {
	st, err := c.ys.AcceptStream()
	if err != nil {
		return nil, c.errOr(err)
	}
	return yamuxStream{st, c}, nil
}

func (c *tcpCarrier) errOr(err error) error {
	if cause := context.Cause(c.ctx); cause != nil {
		return cause
	}
	return err
}

func (c *tcpCarrier) Context() context.Context { return c.ctx }

// ending: yamux marks itself closed before any stream sees the end, and
// watch sets the context's cause a moment later.
func (c *tcpCarrier) ending() bool { return c.ys.IsClosed() || c.ctx.Err() != nil }

func (c *tcpCarrier) CloseWithError(code CloseCode, _ string) error {
	c.cancel(&CloseError{Code: code, Remote: false})
	return c.ys.CloseWithError(uint32(code))
}

func (c *tcpCarrier) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
func (c *tcpCarrier) LocalAddr() net.Addr  { return c.nc.LocalAddr() }

func (c *tcpCarrier) stats() carrierStats {
	return carrierStats{rtt: c.ys.RTT(), bytesSent: c.nc.sent.Load(), bytesReceived: c.nc.received.Load()}
}

// windowBudget is what a TCP session's yamux streams may grow their
// receive windows by, beyond the initial window each starts with (which
// tcpMaxStreams bounds), in all: tcpWindowBudget.
type windowBudget struct{ used atomic.Int64 }

// windowSpan is one stream's share of a windowBudget; yamux makes one per
// stream (its MemoryManager) and calls Done when the stream ends.
type windowSpan struct {
	b    *windowBudget
	held atomic.Int64
}

// yamux reserves a stream's initial window at priority 255, and its
// growth at lower ones.
const yamuxInitialWindowPrio = 255

func (s *windowSpan) ReserveMemory(size int, prio uint8) error {
	if prio == yamuxInitialWindowPrio {
		return nil
	}
	if s.b.used.Add(int64(size)) > tcpWindowBudget {
		s.b.used.Add(-int64(size))
		return errors.New("transport: session window budget spent")
	}
	s.held.Add(int64(size))
	return nil
}

func (s *windowSpan) ReleaseMemory(size int) {
	s.held.Add(-int64(size))
	s.b.used.Add(-int64(size))
}

func (s *windowSpan) Done() { s.b.used.Add(-s.held.Swap(0)) }

func (b *windowBudget) span() (yamux.MemoryManager, error) { return &windowSpan{b: b}, nil }

func (e *Endpoint) yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.MaxIncomingStreams = tcpMaxStreams
	cfg.MaxStreamWindowSize = 16 << 20
	cfg.MaxMessageSize = noiseWriteChunk
	// The session's control pings keep a TCP session alive, as on QUIC,
	// and idleConn ends one that hears nothing: yamux's own keepalive
	// would only double the pings.
	cfg.EnableKeepAlive = false
	cfg.ConnectionWriteTimeout = tcpWriteTimeout
	cfg.ReadBufSize = 0 // noiseConn reads in large blocks already
	cfg.LogOutput = io.Discard
	return cfg
}

// tcpWriteTimeout bounds a yamux write waiting for the socket (a peer
// that stopped reading); generous, since a slow link with full buffers is
// no failure.
const tcpWriteTimeout = 30 * time.Second

// idleConn ends a TCP session that has heard nothing for idle, as QUIC's
// idle timeout does: every read from the socket must bring bytes within
// idle. The session's control pings, every Config.KeepAlive both ways,
// keep a live idle session well inside it; a peer whose host died or
// whose path broke is noticed within idle (a killed process's kernel
// closes the connection at once).
type idleConn struct {
	*noiseConn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	c.noiseConn.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.noiseConn.Read(p)
}

// tcpLane makes the lane of a completed TCP handshake: yamux on the
// records, its stream windows charged to budget. An extra lane pings on its
// own (see the lanes above).
func (e *Endpoint) tcpLane(info *tcpInfo, initiator, extra bool, budget *windowBudget) (*lane, error) {
	mux := yamux.Server
	if initiator {
		mux = yamux.Client
	}
	cfg := e.yamuxConfig()
	if extra {
		cfg.EnableKeepAlive = true
		cfg.KeepAliveInterval = e.cfg.KeepAlive
	}
	ys, err := mux(idleConn{info.conn, e.cfg.IdleTimeout}, cfg, budget.span)
	if err != nil {
		info.conn.Close()
		return nil, fmt.Errorf("transport: yamux: %w", err)
	}
	l := &lane{conn: newTCPCarrier(info.carrier, info.conn, ys, budget)}
	if extra {
		l.id = tcpLaneID(info.secret)
	}
	l.idle.Store(time.Now().UnixNano())
	return l, nil
}

// startTCPSession makes the session of a completed TCP handshake: its
// first lane and the control stream, which the initiator opens.
func (e *Endpoint) startTCPSession(ctx context.Context, info *tcpInfo, initiator bool) (*Session, error) {
	first, err := e.tcpLane(info, initiator, false, &windowBudget{})
	if err != nil {
		return nil, err
	}
	c := first.conn.(*tcpCarrier)
	var ctl rawStream
	if initiator {
		ctl, err = c.OpenStreamSync(ctx)
	} else {
		stop := context.AfterFunc(ctx, func() { c.ys.Close() })
		ctl, err = c.AcceptStream(ctx)
		if !stop() {
			err = errors.Join(err, ctx.Err())
		}
	}
	if err != nil {
		c.CloseWithError(CodeRefused, "")
		return nil, fmt.Errorf("transport: control stream: %w", err)
	}
	var key [handshake.LaneKeySize]byte // none: a relayed session adds no lanes
	if info.carrier == CarrierTCP {
		key = tcpLaneKey(info.secret)
	}
	return startSession(e, first, ctl, info.peerInfo, initiator, key), nil
}

// joinTCP makes the connection of a completed handshake that carried a
// lane key an extra lane of the session it names.
func (e *Endpoint) joinTCP(info *tcpInfo) error {
	first, ok := info.join.conn.(*tcpCarrier)
	if !ok {
		info.conn.Close()
		return errNoSession
	}
	l, err := e.tcpLane(info, false, true, first.budget)
	if err != nil {
		return err
	}
	if err := info.join.addLane(l); err != nil {
		l.conn.CloseWithError(CodeRefused, "")
		return err
	}
	return nil
}

// dialTCPLane dials an extra lane of the TCP session s.
func (e *Endpoint) dialTCPLane(ctx context.Context, s *Session) (*lane, error) {
	first, ok := s.conn.(*tcpCarrier)
	if !ok {
		return nil, errNoLane
	}
	info, err := e.dialTCP(ctx, s.peer.id, s.conn.RemoteAddr().String(), s.laneKey[:])
	if err != nil {
		return nil, err
	}
	return e.tcpLane(info, true, true, first.budget)
}

func tcpLaneKey(secret [32]byte) (k [handshake.LaneKeySize]byte) {
	copy(k[:], deriveTCP(secret, tcpLaneKeyLabel))
	return k
}

func tcpLaneID(secret [32]byte) uint64 {
	return binary.BigEndian.Uint64(deriveTCP(secret, tcpLaneIDLabel)) | 1 // never 0, the first lane's
}

func deriveTCP(secret [32]byte, label string) []byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte(label))
	return m.Sum(nil)
}

// DialTCP connects to the peer id over the TCP carrier at addr ("host:port").
func (e *Endpoint) DialTCP(ctx context.Context, id identity.PeerID, addr string) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.HandshakeTimeout)
	defer cancel()
	info, err := e.dialTCP(ctx, id, addr, nil)
	if err != nil {
		return nil, err
	}
	return e.startTCPSession(ctx, info, true)
}

// TCPAddrs returns the bound TCP addresses.
func (e *Endpoint) TCPAddrs() []net.Addr {
	out := make([]net.Addr, 0, len(e.tcpListeners))
	for _, ln := range e.tcpListeners {
		out = append(out, ln.Addr())
	}
	return out
}

// acceptTCP accepts TCP carrier connections from ln until it is closed,
// under the same admission as QUIC's: per-source limits, the pending
// budget that evicts the oldest silent handshake, message 1 within
// Message1Timeout.
func (e *Endpoint) acceptTCP(ln net.Listener) {
	defer e.wg.Done()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.ctx.Err() != nil {
				return
			}
			// Out of descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-e.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		src := c.RemoteAddr()
		if !e.adm.sources.begin(src, time.Now()) {
			e.reportOverloaded()
			c.Close()
			continue
		}
		p := e.adm.admit(func() { c.Close() })
		if p == nil {
			e.adm.sources.end(src)
			e.reportOverloaded()
			c.Close()
			continue
		}
		e.wg.Add(1)
		go e.handleTCP(c, src, p)
	}
}

func (e *Endpoint) handleTCP(c net.Conn, src net.Addr, p *pendingHS) {
	defer e.wg.Done()
	s, err := e.acceptOn(e.ctx, c, p, identity.PeerID{}, CarrierTCP)
	e.adm.sources.end(src)
	if err != nil {
		e.log.Debug("inbound tcp session failed", "remote", src.String(), "err", err)
		return
	}
	if s == nil {
		return // an extra lane, joined to its session
	}
	select {
	case e.accepted <- s:
	case <-e.ctx.Done():
		s.Close(CodeGoingAway)
	}
}

// acceptOn runs the responder's handshake on c, admitted as the pending
// handshake p, within the handshake timeout, and starts its session, or
// joins c to the session its lane key names and returns no session; on
// failure c is closed. want and carrier are respondTCP's.
func (e *Endpoint) acceptOn(ctx context.Context, c net.Conn, p *pendingHS, want identity.PeerID, carrier string) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.HandshakeTimeout)
	defer cancel()
	start := time.Now()
	info, err := e.respondTCP(ctx, c, p, want, carrier)
	e.reportHandshake(start, err)
	e.adm.release(p)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if info.join != nil {
		return nil, e.joinTCP(info)
	}
	return e.startTCPSession(ctx, info, false)
}
