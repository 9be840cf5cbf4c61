package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/p2pd/p2pd/handshake"
	"github.com/quic-go/quic-go"
)

// Lanes: a session's QUIC connections.
//
// Every QUIC connection allows the peer StreamsPerConn concurrent streams,
// before authentication and after, because quic-go fixes the limit when the
// connection starts. The limit is small on purpose: a STREAM frame for a high
// stream ID makes QUIC open every lower-numbered stream at once, so the limit
// is what one frame from a stranger can cost. A session that needs more
// streams adds connections (lanes), each with its own QUIC and Noise
// handshake; the Noise payload of an extra lane carries the session's lane
// key (Payload.Lane), a TLS exporter value of the session's first
// connection, which only its two ends know. The responder accepts a lane
// only for an established session of the same authenticated peer, and at
// most MaxLanes per session.
//
// The first lane (id 0) carries the control stream; a session ends with it.
// Either side may add a lane, when every lane it has is at the peer's
// stream limit; adding is one dial at a time per session. An extra lane that
// fails only takes its own streams with it.
//
// A TCP session has lanes too, for throughput rather than stream limits:
// see tcpcarrier.go. Idle lanes, the going-away count and the end of a
// lane work the same on both carriers.
const (
	// StreamsPerConn is how many concurrent streams one QUIC connection
	// allows the peer to open (each costs ~1.5 KiB in quic-go).
	StreamsPerConn = 128
	// MaxLanes bounds a session's connections: at most
	// MaxLanes*StreamsPerConn concurrent streams from one peer.
	MaxLanes = 128
	// laneRetry is how long a session waits after a failed lane dial before
	// it tries another (laneBackoff doubles it while dials keep failing);
	// meanwhile new streams wait for a free one.
	laneRetry = 5 * time.Second

	laneKeyLabel = "EXPORTER-p2pd/1 lane key"
	laneIDLabel  = "EXPORTER-p2pd/1 lane id"
	laneIDLen    = 8
)

// errNoLane reports that a session cannot add a lane now.
var errNoLane = errors.New("transport: no more lanes")

// lane is one connection of a session: a QUIC connection, or yamux over
// Noise records on a TCP connection.
type lane struct {
	id    uint64 // 0 for the session's first connection
	conn  carrierConn
	qconn *quic.Conn // the same connection, when it is QUIC; nil on TCP
	// opened is one past the highest stream ID this side opened on the
	// lane, accepted one past the highest the peer opened and this side
	// accepted: a going-away frame carries opened so the peer can tell
	// when it has every stream the sender meant it to have.
	opened   atomic.Int64
	accepted atomic.Int64

	dialed  bool         // this side dialed it, and so may retire it when idle
	streams atomic.Int64 // streams on it not yet done
	idle    atomic.Int64 // unix nanoseconds when streams last fell to 0
	closing atomic.Bool  // retiring: no new stream opens on it
	// drained is set by the first lane-close or lane-done that names the
	// lane: one drainer per lane, however many frames the peer repeats.
	drained atomic.Bool
}

// release counts one of the lane's streams done.
func (l *lane) release() {
	if l.streams.Add(-1) == 0 {
		l.idle.Store(time.Now().UnixNano())
	}
}

// laneKey is the value extra lanes of the session on conn present.
func laneKey(conn *quic.Conn) ([handshake.LaneKeySize]byte, error) {
	var k [handshake.LaneKeySize]byte
	cs := conn.ConnectionState().TLS
	b, err := cs.ExportKeyingMaterial(laneKeyLabel, nil, handshake.LaneKeySize)
	if err != nil {
		return k, fmt.Errorf("transport: lane key: %w", err)
	}
	copy(k[:], b)
	return k, nil
}

// laneID names an extra lane the same way on both sides.
func laneID(conn *quic.Conn) (uint64, error) {
	cs := conn.ConnectionState().TLS
	b, err := cs.ExportKeyingMaterial(laneIDLabel, nil, laneIDLen)
	if err != nil {
		return 0, fmt.Errorf("transport: lane id: %w", err)
	}
	return binary.BigEndian.Uint64(b) | 1, nil // never 0, the first lane's
}

// accepted is a peer's stream and the lane it came on.
type acceptedStream struct {
	qs rawStream
	l  *lane
}

// acceptLane hands the lane's streams to AcceptStream until the lane ends.
// Streams the peer opened after its going-away are refused: a retiring
// session takes no new work.
func (s *Session) acceptLane(l *lane) {
	defer s.acceptors.Done()
	defer s.dropLane(l)
	for {
		qs, err := l.conn.AcceptStream(s.conn.Context())
		if err != nil {
			return
		}
		if s.pastGoingAway(l.id, int64(qs.StreamID())) || !s.admitInbound() {
			refuseStream(qs)
			continue
		}
		select {
		case s.incoming <- acceptedStream{qs: qs, l: l}:
		case <-l.conn.Context().Done():
			s.unadmitInbound()
			qs.CancelRead(StreamAborted)
			qs.CancelWrite(StreamAborted)
			return
		case <-s.conn.Context().Done():
			s.unadmitInbound()
			qs.CancelRead(StreamAborted)
			qs.CancelWrite(StreamAborted)
			return
		}
	}
}

// admitInbound counts one more live stream from the peer on a TCP session,
// or reports that the session holds tcpMaxStreams already: yamux bounds
// each of its connections, and a session may have tcpMaxLanes. On QUIC the
// stream credit of each connection is the bound, so nothing is counted.
func (s *Session) admitInbound() bool {
	if !s.onTCP() {
		return true
	}
	if limit := tcpSessionStreams.Load(); s.inbound.Add(1) > limit {
		s.inbound.Add(-1)
		if !s.capHit.Swap(true) {
			s.ep.log.Warn("peer holds the most streams a TCP session takes; refusing new ones until some end",
				"peer", s.peer.id.ShortString(), "limit", limit)
		}
		return false
	}
	s.capHit.Store(false)
	return true
}

// unadmitInbound takes back an admitInbound whose stream was not accepted.
func (s *Session) unadmitInbound() {
	if s.onTCP() {
		s.inbound.Add(-1)
	}
}

// refuseStream resets a stream the session does not take.
func refuseStream(qs rawStream) {
	qs.CancelRead(StreamRefused)
	qs.CancelWrite(StreamRefused)
}

// quicLane makes conn, an extra QUIC connection, a lane.
func quicLane(conn *quic.Conn) (*lane, error) {
	id, err := laneID(conn)
	if err != nil {
		return nil, err
	}
	l := &lane{id: id, conn: quicCarrier{conn}, qconn: conn}
	l.idle.Store(time.Now().UnixNano())
	return l, nil
}

// addLane makes l one of the session's lanes and starts accepting its
// streams. It fails when the session is closing or has its most lanes
// (MaxLanes; tcpMaxLanes on TCP).
func (s *Session) addLane(l *lane) error {
	most := MaxLanes
	if l.qconn == nil {
		most = tcpMaxLanes
	}
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	if s.State() != StateEstablished || s.conn.Context().Err() != nil || len(s.lanes) >= most {
		// The peer may count the lane in its going-away already: a drain
		// must not wait for it.
		s.markGone(l.id)
		if len(s.lanes) >= most {
			if !l.dialed && !s.laneCapLogged.Swap(true) {
				s.ep.log.Warn("peer opened more connections than a session takes; refusing the extra ones",
					"peer", s.peer.id.ShortString(), "limit", most)
			}
			return errNoLane
		}
		return ErrClosed
	}
	s.lanes = append(s.lanes, l)
	if l.qconn != nil {
		s.ep.byConn.Store(l.qconn, s)
	}
	if !s.laneAcceptors {
		// The first lane's streams now need a goroutine of their own too.
		s.laneAcceptors = true
		s.acceptors.Add(1)
		go s.acceptLane(s.lanes[0])
		if s.wakeDirect != nil {
			s.wakeDirect()
		}
	}
	s.acceptors.Add(1)
	go s.acceptLane(l)
	return nil
}

// dropLane forgets an extra lane that ended.
func (s *Session) dropLane(l *lane) {
	if l.id == 0 {
		return
	}
	l.conn.CloseWithError(CodeNormal, "")
	if l.qconn != nil {
		s.ep.byConn.Delete(l.qconn)
	}
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	for i, x := range s.lanes {
		if x == l {
			s.lanes = append(s.lanes[:i:i], s.lanes[i+1:]...)
			s.markGone(l.id)
			return
		}
	}
}

// maxGone bounds the ended lanes a session remembers: a going-away names
// only the lanes its sender still has, so the last few suffice, and a peer
// that keeps adding and dropping lanes cannot grow the set.
const maxGone = 2 * MaxLanes

// markGone records that the lane id ended, forgetting the oldest past
// maxGone. The caller holds lanesMu.
func (s *Session) markGone(id uint64) {
	if s.gone == nil {
		s.gone = make(map[uint64]bool)
	}
	if s.gone[id] {
		return
	}
	s.gone[id] = true
	s.goneOrder = append(s.goneOrder, id)
	if len(s.goneOrder) > maxGone {
		delete(s.gone, s.goneOrder[0])
		s.goneOrder = s.goneOrder[1:]
	}
}

// laneGone reports whether the lane id was the session's and has ended.
func (s *Session) laneGone(id uint64) bool {
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	return s.gone[id]
}

func (s *Session) lanesNow() []*lane {
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	return s.lanes
}

// laneByID returns the lane with id, or nil.
func (s *Session) laneByID(id uint64) *lane {
	for _, l := range s.lanesNow() {
		if l.id == id {
			return l
		}
	}
	return nil
}

// openRaw opens a raw stream on a lane, for every carrier: a TCP session
// picks its lane in openTCP; a QUIC one takes the first lane with room,
// adding a lane when every one is at the peer's limit, and when no lane
// can be added waits for room on the first lane.
func (s *Session) openRaw(ctx context.Context) (rawStream, *lane, error) {
	if s.onTCP() {
		return s.openTCP(ctx)
	}
	for {
		for _, l := range s.lanesNow() {
			if l.closing.Load() {
				continue
			}
			qs, err := l.conn.OpenStream()
			if err == nil {
				return qs, l, nil
			}
			if !errors.Is(err, errStreamLimit) && l.id == 0 {
				return nil, nil, s.errOr(err)
			}
		}
		if err := s.grow(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			first := s.lanesNow()[0]
			qs, err := first.conn.OpenStreamSync(ctx)
			if err != nil {
				return nil, nil, s.errOr(err)
			}
			return qs, first, nil
		}
	}
}

// openTCP opens a stream on the TCP lane with the fewest streams open, and
// has a lane added in the background while the session has fewer than
// tcpLanes (tcpcarrier.go): a session that carries streams gets its second
// connection with its first stream, before a burst of them could all land
// on one.
func (s *Session) openTCP(ctx context.Context) (rawStream, *lane, error) {
	lanes := s.lanesNow()
	if len(lanes) < tcpLanes {
		s.growSoon()
	}
	best := lanes[0]
	for _, l := range lanes[1:] {
		if !l.closing.Load() && !l.conn.ending() && l.streams.Load() < best.streams.Load() {
			best = l
		}
	}
	qs, err := best.conn.OpenStreamSync(ctx)
	if err != nil && best != lanes[0] && ctx.Err() == nil {
		best = lanes[0] // an extra lane that just failed: the first is the session
		qs, err = best.conn.OpenStreamSync(ctx)
	}
	if err != nil {
		return nil, nil, s.errOr(err)
	}
	return qs, best, nil
}

// growSoon adds a lane in the background if this side may add one now and
// no lane dial is under way.
func (s *Session) growSoon() {
	s.lanesMu.Lock()
	ok := s.growing == nil && s.mayGrow() && s.growDue() && s.State() == StateEstablished
	s.lanesMu.Unlock()
	if ok {
		go s.grow(s.conn.Context())
	}
}

// grow adds a lane, or waits for the lane dial under way. It returns nil
// when the caller should look for room again.
func (s *Session) grow(ctx context.Context) error {
	s.lanesMu.Lock()
	if ch := s.growing; ch != nil {
		s.lanesMu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !s.mayGrow() || !s.growDue() || s.State() != StateEstablished {
		s.lanesMu.Unlock()
		return errNoLane
	}
	ch := make(chan struct{})
	s.growing = ch
	s.lanesMu.Unlock()

	err := s.dialLane()
	s.lanesMu.Lock()
	s.growing = nil
	fails := 0
	if err != nil {
		s.growFailed = time.Now()
		s.growFails++
		fails = s.growFails
	} else {
		s.growFails = 0
	}
	s.lanesMu.Unlock()
	close(ch)
	if err != nil {
		msg := "session: could not add a connection; new streams wait for a free one"
		if s.onTCP() {
			msg = "session: could not add a TCP connection; streams stay on the one it has"
		}
		level := slog.LevelInfo
		if fails > 1 {
			level = slog.LevelDebug // said once per run of failures
		}
		s.ep.log.Log(context.Background(), level, msg, "peer", s.peer.id.ShortString(), "err", err, "failures", fails, "retry", laneBackoff(fails))
	}
	return err
}

// growDue reports whether the wait after failed lane dials is over:
// laneBackoff of the failures in a row. The caller holds lanesMu.
func (s *Session) growDue() bool {
	return s.growFails == 0 || time.Since(s.growFailed) >= laneBackoff(s.growFails)
}

// laneBackoff is the wait before another lane dial after fails failed in a
// row: laneRetry, doubling up to 64 times that (about 5 minutes), so that
// a path that takes one connection and never a second is not redialed
// every few seconds for the session's life.
func laneBackoff(fails int) time.Duration {
	return laneRetry << min(max(fails-1, 0), 6)
}

// onTCP reports whether the session's lanes are yamux over Noise records
// (the TCP carrier, or a relayed stream) rather than QUIC connections.
func (s *Session) onTCP() bool {
	_, ok := s.conn.(*tcpCarrier)
	return ok
}

// mayGrow reports whether this side may add a lane now: on QUIC either side
// up to MaxLanes, on TCP the initiator up to tcpLanes. The caller holds
// lanesMu.
func (s *Session) mayGrow() bool {
	if !s.onTCP() {
		return len(s.lanes) < MaxLanes
	}
	return s.initiator && s.laneKey != ([handshake.LaneKeySize]byte{}) && len(s.lanes) < tcpLanes
}

// dialLane dials an extra lane to the peer at the session's address.
func (s *Session) dialLane() error {
	ctx, cancel := context.WithTimeout(s.conn.Context(), s.ep.cfg.HandshakeTimeout)
	defer cancel()
	l, err := s.dialLaneConn(ctx)
	if err != nil {
		return err
	}
	l.dialed = true // before addLane publishes it to reapLanes
	if err := s.addLane(l); err != nil {
		l.conn.CloseWithError(CodeNormal, "")
		return err
	}
	return nil
}

// dialLaneConn dials the connection of an extra lane on the session's
// carrier.
func (s *Session) dialLaneConn(ctx context.Context) (*lane, error) {
	if s.onTCP() {
		return s.ep.dialTCPLane(ctx, s)
	}
	conn, st, _, err := s.ep.dialConn(ctx, s.peer.id, s.conn.RemoteAddr(), s.laneKey[:])
	if err != nil {
		return nil, err
	}
	st.CancelRead(0) // a lane's handshake stream has no further use
	st.Close()
	l, err := quicLane(conn)
	if err != nil {
		closeQUIC(conn, CodeNormal, "")
	}
	return l, err
}

// Idle lanes: the side that dialed an extra lane retires it once it has
// carried no stream for laneIdle. Streams may be on their way either way,
// on a connection other than the control stream's, so the two sides count
// them, as a session's graceful end does:
//
//	dialer ── lane-close (id, streams it opened on the lane) ──▶ peer
//	         (both now open no stream on the lane)
//	peer: once it accepted that many and finished all its streams on the lane
//	dialer ◀── lane-done (id, streams the peer opened on the lane) ── peer
//	dialer: once it accepted that many and finished all of its own: close
//
// Each side's streams are done only when it has read the other's FIN, so the
// close loses nothing. A peer that does not know lane-close (an older one)
// never answers, and the lane then just stays idle.
var laneIdle = newDuration(time.Minute)

// duration is a time.Duration that tests may change while sessions run.
type duration struct{ v atomic.Int64 }

func newDuration(d time.Duration) *duration {
	var x duration
	x.v.Store(int64(d))
	return &x
}

func (d *duration) get() time.Duration  { return time.Duration(d.v.Load()) }
func (d *duration) set(v time.Duration) { d.v.Store(int64(v)) }

// reapLanes starts retiring the lanes this side dialed that have been idle
// for laneIdle.
func (s *Session) reapLanes(now time.Time) {
	for _, l := range s.lanesNow()[1:] {
		if !l.dialed || l.closing.Load() || l.streams.Load() != 0 || now.UnixNano()-l.idle.Load() < int64(laneIdle.get()) {
			continue
		}
		l.closing.Store(true)
		s.writeCtl(ctlFrame{typ: ctlLaneClose, body: laneFrame(l.id, l.opened.Load())})
	}
}

func laneFrame(id uint64, opened int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, id)
	return binary.BigEndian.AppendUint64(b, uint64(opened))
}

func parseLaneFrame(b []byte) (id uint64, opened int64, ok bool) {
	if len(b) != laneFrameLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[laneIDLen:])), true
}

// laneFrame handles the peer's lane-close or lane-done: once every stream
// the peer announced on the lane is accepted and this side's streams on it
// are done, it answers lane-done, or closes the lane.
func (s *Session) laneFrame(typ ctlType, id uint64, peerOpened int64) {
	l := s.laneByID(id)
	if l == nil || l.id == 0 || (typ == ctlLaneDone) != l.dialed {
		if typ == ctlLaneClose && l == nil {
			s.writeCtl(ctlFrame{typ: ctlLaneDone, body: laneFrame(id, 0)})
		}
		return
	}
	l.closing.Store(true)
	if l.drained.Swap(true) {
		return // a repeat: the first frame's drainer answers
	}
	s.drainers.Add(1)
	go func() {
		defer s.drainers.Done()
		t := time.NewTicker(drainPoll)
		defer t.Stop()
		for l.accepted.Load() < peerOpened || l.streams.Load() > 0 {
			select {
			case <-t.C:
			case <-l.conn.Context().Done():
				return
			}
		}
		if typ == ctlLaneClose {
			s.writeCtl(ctlFrame{typ: ctlLaneDone, body: laneFrame(l.id, l.opened.Load())})
			return
		}
		l.conn.CloseWithError(CodeNormal, "")
	}()
}
