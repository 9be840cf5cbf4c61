package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
	"github.com/quic-go/quic-go"
)

// State is a session's place in its life:
//
//	established ──▶ closing ──▶ closed
//
// Sessions exist only once their handshake has completed; dialing and
// handshaking are states of the node's peer, not of a session.
type State int32

// Session states.
const (
	StateEstablished State = iota
	StateClosing
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateEstablished:
		return "established"
	case StateClosing:
		return "closing"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Session is an authenticated session with one peer over one carrier (a
// QUIC connection, Noise over TCP with yamux, or a relayed libp2p stream;
// carrier.go). Every stream on it comes from that peer. It is safe for concurrent use.
type Session struct {
	ep        *Endpoint
	conn      carrierConn // the first lane's
	ctl       rawStream
	peer      peerInfo
	initiator bool
	started   time.Time

	state   atomic.Int32
	streams atomic.Int64

	laneKey [handshake.LaneKeySize]byte // what extra lanes present (see lane.go)
	// lanesMu guards lanes, growing, growFailed, growFails, gone, laneAcceptors and
	// wakeDirect. lanes[0] is the first
	// connection, conn; the slice is replaced, never changed in place.
	lanesMu    sync.Mutex
	lanes      []*lane
	growing    chan struct{}   // non-nil while a lane dial runs; closed when it ends
	growFailed time.Time       // when the last lane dial failed
	growFails  int             // lane dials failed in a row
	gone       map[uint64]bool // ids of extra lanes that ended, the last maxGone
	goneOrder  []uint64        // gone's ids, oldest first
	incoming   chan acceptedStream
	// Until the session has an extra lane, AcceptStream takes the first
	// lane's streams itself (one goroutine fewer per idle session);
	// wakeDirect ends such a wait when the first extra lane comes, and
	// from then on every lane has an acceptLane goroutine.
	laneAcceptors bool
	wakeDirect    context.CancelFunc
	window        atomic.Int64   // flow-control window growth granted to all lanes
	acceptors     sync.WaitGroup // one acceptLane per lane, owned by controlLoop
	// inbound counts the live streams the peer opened on a TCP session,
	// which admitInbound bounds at tcpMaxStreams (yamux bounds each lane
	// alone); capHit is set while it refuses, for one log line a burst.
	inbound atomic.Int64
	capHit  atomic.Bool
	// laneCapLogged is set once the peer's lanes hit the cap (addLane).
	laneCapLogged atomic.Bool

	ctlMu sync.Mutex // serialises writes on the control stream
	// pingMu guards pings, the waiters for pongs by nonce.
	pingMu sync.Mutex
	pings  map[uint64]chan struct{}

	done      chan struct{} // closed when the control loop has ended
	once      sync.Once
	keepalive *time.Timer // padded control pings; stopped when the loop ends

	flows flowTable // udp flows with QUIC datagrams (flow.go)

	// opened counts the streams opened on the session, either way
	// (Activity); idleEnd is set when either side ended it for lack of use
	// (CloseIdle).
	opened  atomic.Uint64
	idleEnd atomic.Bool

	drainMu  sync.Mutex // guards drain
	drain    drainState
	drainers sync.WaitGroup // the drain goroutine, owned by controlLoop
}

// newSession starts a session on the QUIC connection conn.
func newSession(e *Endpoint, conn *quic.Conn, ctl *quic.Stream, info peerInfo, initiator bool) (*Session, error) {
	key, err := laneKey(conn)
	if err != nil {
		return nil, err
	}
	s := startSession(e, &lane{conn: quicCarrier{conn}, qconn: conn}, quicStream{ctl}, info, initiator, key)
	return s, nil
}

// startSession starts a session whose first lane is first and whose
// control stream is ctl. A session without a lane key (relayed) adds no
// lanes.
func startSession(e *Endpoint, first *lane, ctl rawStream, info peerInfo, initiator bool, key [handshake.LaneKeySize]byte) *Session {
	s := &Session{
		ep: e, conn: first.conn, ctl: ctl, peer: info, initiator: initiator,
		started:  time.Now(),
		laneKey:  key,
		pings:    make(map[uint64]chan struct{}),
		done:     make(chan struct{}),
		incoming: make(chan acceptedStream),
	}
	s.lanes = []*lane{first}
	if key != ([handshake.LaneKeySize]byte{}) {
		e.register(s)
	}
	if first.qconn == nil {
		// A TCP carrier cannot be waited on with a context: its streams
		// always come through an acceptLane goroutine.
		s.laneAcceptors = true
		s.acceptors.Add(1)
		go s.acceptLane(first)
	}
	// Made stopped, then armed: sendKeepalive resets s.keepalive, which
	// must be set before it can run.
	s.keepalive = time.AfterFunc(time.Hour, s.sendKeepalive)
	s.keepalive.Reset(e.cfg.KeepAlive)
	go s.controlLoop()
	return s
}

// keepalivePad pads keepalive pings so that their packets are long enough to
// draw a stateless reset from a peer that restarted (quic-go answers only
// packets of more than 42 bytes): a crashed peer is then noticed within one
// keepalive period instead of the idle timeout.
const keepalivePad = 64

// sendKeepalive sends a padded ping on the control stream and schedules the
// next one. The pong is not awaited: the idle timeout (QUIC's own, a read
// deadline on TCP; see DefaultIdleTimeout) ends a session whose peer went
// silent, and the pings, every Config.KeepAlive both ways, keep a live one
// inside it on either carrier.
func (s *Session) sendKeepalive() {
	if s.conn.Context().Err() != nil {
		return
	}
	s.writeCtl(ctlFrame{typ: ctlPing, body: make([]byte, pingNonceLen+keepalivePad)})
	s.reapLanes(time.Now())
	s.keepalive.Reset(s.ep.cfg.KeepAlive)
}

// Peer returns the authenticated identity of the other side.
func (s *Session) Peer() identity.PeerID { return s.peer.id }

// PeerName returns the name the peer gave in its handshake payload.
func (s *Session) PeerName() string { return s.peer.name }

// PeerInstance returns the peer daemon's per-start random instance number.
func (s *Session) PeerInstance() uint64 { return s.peer.instance }

// Initiator reports whether this side dialed the session.
func (s *Session) Initiator() bool { return s.initiator }

// RemoteAddr returns the peer's address: UDP for QUIC, TCP for the TCP
// carrier, a RelayAddr for a relayed session.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// LocalAddr returns this side's address on the carrier.
func (s *Session) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// Established returns when the handshake completed.
func (s *Session) Established() time.Time { return s.started }

// State returns the session's state.
func (s *Session) State() State { return State(s.state.Load()) }

// Done is closed once the session has ended and its goroutine returned.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it is up.
func (s *Session) Err() error {
	if err := context.Cause(s.conn.Context()); err != nil && s.conn.Context().Err() != nil {
		return closeCause(err)
	}
	return nil
}

// Stats is a snapshot of a session's counters.
type Stats struct {
	RTT             time.Duration
	Streams         int
	BytesSent       uint64
	BytesReceived   uint64
	PacketsSent     uint64
	PacketsReceived uint64
	PacketsLost     uint64
	// GSO reports whether the kernel batches this session's sends (UDP
	// generic segmentation offload): without it every packet is a syscall.
	GSO bool
	// Conns is how many connections (lanes) the session has.
	Conns int
}

// Stats returns the session's counters, summed over its connections.
func (s *Session) Stats() Stats {
	first := s.conn.stats()
	st := Stats{RTT: first.rtt, Streams: int(s.streams.Load()), GSO: first.gso}
	for _, l := range s.lanesNow() {
		cs := l.conn.stats()
		st.Conns++
		st.BytesSent += cs.bytesSent
		st.BytesReceived += cs.bytesReceived
		st.PacketsSent += cs.packetsSent
		st.PacketsReceived += cs.packetsReceived
		st.PacketsLost += cs.lost
	}
	return st
}

// Close ends the session with code and waits for its goroutine. It is
// idempotent; only the first code is sent.
func (s *Session) Close(code CloseCode) {
	s.once.Do(func() {
		// Not a plain store: a session the peer ended is closed already,
		// and must not read as closing again.
		s.state.CompareAndSwap(int32(StateEstablished), int32(StateClosing))
		for _, l := range s.lanesNow()[1:] {
			l.conn.CloseWithError(code, "")
		}
		s.conn.CloseWithError(code, "")
	})
	<-s.done
}

// controlLoop answers pings and wakes ping waiters until the connection ends.
func (s *Session) controlLoop() {
	defer close(s.done)
	defer s.state.Store(int32(StateClosed))
	defer s.drainers.Wait()
	defer s.keepalive.Stop()
	defer s.endLanes()
	// Unblock the reader when the connection ends for any reason.
	stop := context.AfterFunc(s.conn.Context(), func() { s.ctl.CancelRead(0) })
	defer stop()
	buf := make([]byte, MaxControlBody)
	for {
		f, err := readCtlFrame(s.ctl, buf)
		if err != nil {
			if !s.conn.ending() {
				s.conn.CloseWithError(CodeProtocol, "")
			}
			<-s.conn.Context().Done()
			return
		}
		switch f.typ {
		case ctlPing:
			if len(f.body) >= pingNonceLen { // keepalives carry padding
				s.writeCtl(ctlFrame{typ: ctlPong, body: append([]byte(nil), f.body[:pingNonceLen]...)})
			}
		case ctlPong:
			if len(f.body) == pingNonceLen {
				s.pong(binary.BigEndian.Uint64(f.body))
			}
		case ctlGoingAway:
			if opened, ok := parseGoingAway(f.body); ok {
				s.peerGoingAway(opened)
			}
		case ctlDrained:
			s.peerDrained()
		case ctlIdle:
			s.idleEnd.Store(true)
		case ctlLaneClose, ctlLaneDone:
			if id, opened, ok := parseLaneFrame(f.body); ok {
				s.laneFrame(f.typ, id, opened)
			}
		}
	}
}

func (s *Session) writeCtl(f ctlFrame) error {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	s.ctl.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := s.ctl.Write(f.appendBinary(nil))
	return err
}

func (s *Session) pong(nonce uint64) {
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if ch, ok := s.pings[nonce]; ok {
		close(ch)
		delete(s.pings, nonce)
	}
}

// Ping measures one round trip over the control stream.
func (s *Session) Ping(ctx context.Context) (time.Duration, error) {
	var nb [pingNonceLen]byte
	rand.Read(nb[:])
	nonce := binary.BigEndian.Uint64(nb[:])
	ch := make(chan struct{})
	s.pingMu.Lock()
	s.pings[nonce] = ch
	s.pingMu.Unlock()
	defer func() {
		s.pingMu.Lock()
		delete(s.pings, nonce)
		s.pingMu.Unlock()
	}()
	start := time.Now()
	if err := s.writeCtl(ctlFrame{typ: ctlPing, body: nb[:]}); err != nil {
		return 0, s.errOr(err)
	}
	select {
	case <-ch:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.conn.Context().Done():
		return 0, s.errOr(ErrClosed)
	}
}

func (s *Session) errOr(err error) error {
	if e := s.Err(); e != nil {
		return e
	}
	return err
}

// OpenStream opens a stream, sends req and waits for the answer. A non-OK
// answer is a *StatusError.
func (s *Session) OpenStream(ctx context.Context, req Request, headerTimeout time.Duration) (*Stream, error) {
	req.Pipelined = false // we wait for the answer before any payload
	st, err := s.openStream(ctx, req, headerTimeout, nil)
	if err != nil {
		return nil, err
	}
	if st.awaitResponse(); st.err != nil {
		return nil, st.err
	}
	return st, nil
}

// OpenStreamEarly opens a stream and sends req without waiting for the
// answer: the caller may write payload at once, and the first Read returns
// the answer's error (a *StatusError for a refusal) before any payload. This
// saves a round trip per connection for protocols whose client speaks first.
// A refused stream's payload is discarded by the peer unread. onFail, if not
// nil, is called when the answer does not come (a timeout or a dead session).
// The request is sent pipelined (see Request.Pipelined).
func (s *Session) OpenStreamEarly(ctx context.Context, req Request, headerTimeout time.Duration, onFail func(error)) (*Stream, error) {
	req.Pipelined = true
	return s.openStream(ctx, req, headerTimeout, onFail)
}

func (s *Session) openStream(ctx context.Context, req Request, headerTimeout time.Duration, onFail func(error)) (*Stream, error) {
	hdr, err := req.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	qs, l, err := s.openRaw(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.countOpened(qs, l); err != nil {
		return nil, err
	}
	st := s.wrap(qs, l)
	if _, err := qs.Write(hdr); err != nil {
		st.Abort()
		return nil, s.errOr(err)
	}
	st.pending = &pendingResponse{timeout: headerTimeout, service: req.Service, onFail: onFail}
	return st, nil
}

// AcceptStream returns the peer's next stream; the caller reads its request
// with ReadRequest and answers it with Respond. One goroutine at a time
// calls it.
func (s *Session) AcceptStream(ctx context.Context) (*Stream, error) {
	for {
		s.lanesMu.Lock()
		direct := !s.laneAcceptors
		var lctx context.Context
		var cancel context.CancelFunc
		if direct {
			lctx, cancel = context.WithCancel(ctx)
			s.wakeDirect = cancel
		}
		first := s.lanes[0]
		s.lanesMu.Unlock()
		if !direct {
			select {
			case a := <-s.incoming:
				return s.accepted(a), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-s.conn.Context().Done():
				return nil, s.errOr(ErrClosed)
			}
		}
		qs, err := s.conn.AcceptStream(lctx)
		s.lanesMu.Lock()
		s.wakeDirect = nil
		woken := s.laneAcceptors
		s.lanesMu.Unlock()
		cancel()
		switch {
		case err == nil && (s.pastGoingAway(0, int64(qs.StreamID())) || !s.admitInbound()):
			refuseStream(qs)
		case err == nil:
			return s.accepted(acceptedStream{qs: qs, l: first}), nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !woken || s.conn.Context().Err() != nil:
			return nil, s.errOr(err)
		}
		// An extra lane came: its acceptors take over.
	}
}

// accepted wraps a stream the peer opened. It is counted before accepted
// moves: a drain must see it.
func (s *Session) accepted(a acceptedStream) *Stream {
	st := s.wrap(a.qs, a.l)
	st.inbound = s.onTCP() // admitInbound counted it
	raiseTo(&a.l.accepted, int64(a.qs.StreamID())+1)
	return st
}

// raiseTo sets a to v if v is larger.
func raiseTo(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

func (s *Session) wrap(qs rawStream, l *lane) *Stream {
	s.opened.Add(1)
	s.streams.Add(1)
	l.streams.Add(1)
	return &Stream{qs: qs, sess: s, lane: l}
}

// endLanes closes the extra lanes once the first one has ended, waits for
// every lane's acceptor and forgets the session's lane key.
func (s *Session) endLanes() {
	code := CodeNormal
	if ce, ok := errors.AsType[*CloseError](s.Err()); ok {
		code = ce.Code
	}
	for _, l := range s.lanesNow()[1:] {
		l.conn.CloseWithError(code, "")
	}
	s.acceptors.Wait() // each extra lane's acceptor drops it
	s.ep.deregister(s)
}

// OpenRawStream opens a stream and sends nothing on it: the caller writes
// what it likes. p2pd's own streams always begin with a request header; this
// is for tests and tools that play a peer that does not.
func (s *Session) OpenRawStream(ctx context.Context) (*Stream, error) {
	qs, l, err := s.openRaw(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.countOpened(qs, l); err != nil {
		return nil, err
	}
	return s.wrap(qs, l), nil
}
