package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

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

// Session is an authenticated QUIC connection to one peer. Every stream on it
// comes from that peer. It is safe for concurrent use.
type Session struct {
	ep        *Endpoint
	conn      *quic.Conn
	ctl       *quic.Stream
	peer      peerInfo
	initiator bool
	started   time.Time

	state   atomic.Int32
	streams atomic.Int64

	ctlMu sync.Mutex // serialises writes on the control stream
	// pingMu guards pings, the waiters for pongs by nonce.
	pingMu sync.Mutex
	pings  map[uint64]chan struct{}

	done chan struct{} // closed when the control loop has ended
	once sync.Once
}

func newSession(e *Endpoint, conn *quic.Conn, ctl *quic.Stream, info peerInfo, initiator bool) *Session {
	s := &Session{
		ep: e, conn: conn, ctl: ctl, peer: info, initiator: initiator,
		started: time.Now(),
		pings:   make(map[uint64]chan struct{}),
		done:    make(chan struct{}),
	}
	go s.controlLoop()
	return s
}

// Peer returns the authenticated identity of the other side.
func (s *Session) Peer() identity.PeerID { return s.peer.id }

// PeerName returns the name the peer gave in its handshake payload.
func (s *Session) PeerName() string { return s.peer.name }

// PeerInstance returns the peer daemon's per-start random instance number.
func (s *Session) PeerInstance() uint64 { return s.peer.instance }

// Initiator reports whether this side dialed the session.
func (s *Session) Initiator() bool { return s.initiator }

// RemoteAddr returns the peer's UDP address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// LocalAddr returns this side's UDP address.
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
	RTT           time.Duration
	Streams       int
	BytesSent     uint64
	BytesReceived uint64
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	cs := s.conn.ConnectionStats()
	return Stats{RTT: cs.SmoothedRTT, Streams: int(s.streams.Load()), BytesSent: cs.BytesSent, BytesReceived: cs.BytesReceived}
}

// Close ends the session with code and waits for its goroutine. It is
// idempotent; only the first code is sent.
func (s *Session) Close(code quic.ApplicationErrorCode) {
	s.once.Do(func() {
		s.state.Store(int32(StateClosing))
		if code == CodeGoingAway {
			s.writeCtl(ctlFrame{typ: ctlGoingAway})
		}
		s.conn.CloseWithError(code, "")
	})
	<-s.done
}

// controlLoop answers pings and wakes ping waiters until the connection ends.
func (s *Session) controlLoop() {
	defer close(s.done)
	defer s.state.Store(int32(StateClosed))
	go func() {
		// Unblock the reader when the connection ends for any reason.
		<-s.conn.Context().Done()
		s.ctl.CancelRead(0)
	}()
	buf := make([]byte, MaxControlBody)
	for {
		f, err := readCtlFrame(s.ctl, buf)
		if err != nil {
			if s.conn.Context().Err() == nil {
				s.conn.CloseWithError(CodeProtocol, "")
			}
			<-s.conn.Context().Done()
			return
		}
		switch f.typ {
		case ctlPing:
			if len(f.body) == pingNonceLen {
				s.writeCtl(ctlFrame{typ: ctlPong, body: append([]byte(nil), f.body...)})
			}
		case ctlPong:
			if len(f.body) == pingNonceLen {
				s.pong(binary.BigEndian.Uint64(f.body))
			}
		case ctlGoingAway:
			s.state.Store(int32(StateClosing))
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
	hdr, err := req.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	qs, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, s.errOr(err)
	}
	st := s.wrap(qs)
	if _, err := qs.Write(hdr); err != nil {
		st.Abort()
		return nil, s.errOr(err)
	}
	qs.SetReadDeadline(time.Now().Add(headerTimeout))
	resp, err := ReadResponse(qs)
	qs.SetReadDeadline(time.Time{})
	if err != nil {
		st.Abort()
		return nil, s.errOr(err)
	}
	if resp.Status != StatusOK {
		st.Abort()
		return nil, &StatusError{Status: resp.Status, Service: req.Service}
	}
	return st, nil
}

// AcceptStream returns the peer's next stream; the caller reads its request
// with ReadRequest and answers it with Respond.
func (s *Session) AcceptStream(ctx context.Context) (*Stream, error) {
	qs, err := s.conn.AcceptStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.errOr(err)
	}
	return s.wrap(qs), nil
}

func (s *Session) wrap(qs *quic.Stream) *Stream {
	s.streams.Add(1)
	return &Stream{qs: qs, sess: s}
}
