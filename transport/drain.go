package transport

import (
	"context"
	"encoding/binary"
	"time"
)

// Graceful end of a session. Either side may start it (GoAway); the other
// answers in kind. Each side then opens no new streams, waits until the
// streams the peer announced have all been accepted and every one of its
// own streams is done (read to EOF and finished), and says drained. The
// connection is closed once a side has been drained and heard the peer say
// so: then every byte sent either way has been read, and closing the
// connection loses nothing.
//
//	established ──GoAway / going-away──▶ closing ──own drained + peer drained──▶ closed
//
// GoAway's context bounds the wait; after it the session is closed anyway.

// drainPoll is how often a closing session checks for its last stream.
const drainPoll = 20 * time.Millisecond

// drainState is a session's progress through the graceful end.
type drainState struct {
	awaySent    bool             // we sent going-away
	peerOpened  map[uint64]int64 // from the peer's going-away, by lane id; nil until it came
	draining    bool             // the drain goroutine runs
	ownDrained  bool             // we sent drained
	peerDrained bool             // the peer sent drained
}

// GoAway tells the peer this side is shutting down, waits until both sides
// have finished their streams and the session is closed, or ctx ends; then it
// closes the session.
func (s *Session) GoAway(ctx context.Context) {
	s.state.CompareAndSwap(int32(StateEstablished), int32(StateClosing))
	if err := s.sendGoingAway(); err == nil {
		select {
		case <-s.conn.Context().Done():
		case <-ctx.Done():
		}
	}
	s.Close(CodeGoingAway)
}

// CloseIdle ends a session that nothing uses, as GoAway does, after
// telling the peer why (an idle frame), so that neither side takes the end
// for a failure: EndedIdle reports it on both.
func (s *Session) CloseIdle(ctx context.Context) {
	s.idleEnd.Store(true)
	s.writeCtl(ctlFrame{typ: ctlIdle})
	s.GoAway(ctx)
}

// EndedIdle reports whether either side ended the session with CloseIdle.
func (s *Session) EndedIdle() bool { return s.idleEnd.Load() }

// Activity returns how many streams the session has carried, either way,
// and how many are open now: a session whose count stays put with none
// open is idle.
func (s *Session) Activity() (opened uint64, open int64) {
	return s.opened.Load(), s.streams.Load()
}

// sendGoingAway sends our going-away once, with one past the highest stream
// ID we opened.
func (s *Session) sendGoingAway() error {
	s.drainMu.Lock()
	if s.drain.awaySent {
		s.drainMu.Unlock()
		return nil
	}
	// Counted under drainMu, as opens are (countOpened): every stream
	// counted here is announced, and none is opened after.
	s.drain.awaySent = true
	lanes := s.lanesNow()
	body := binary.BigEndian.AppendUint64(nil, uint64(lanes[0].opened.Load()))
	for _, l := range lanes[1:] {
		if n := l.opened.Load(); n > 0 {
			body = binary.BigEndian.AppendUint64(body, l.id)
			body = binary.BigEndian.AppendUint64(body, uint64(n))
		}
	}
	s.drainMu.Unlock()
	return s.writeCtl(ctlFrame{typ: ctlGoingAway, body: body})
}

// errGoingAway refuses a stream opened on a session that has said
// going-away: the peer would refuse it, having been told of every stream
// this side meant it to have.
var errGoingAway = &CloseError{Code: CodeGoingAway}

// countOpened counts a stream this side just opened on lane l, unless the
// session has said going-away: then the stream is reset and errGoingAway
// returned. The caller opens streams on another session.
func (s *Session) countOpened(qs rawStream, l *lane) error {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.drain.awaySent {
		qs.CancelWrite(StreamAborted)
		qs.CancelRead(StreamAborted)
		return errGoingAway
	}
	raiseTo(&l.opened, int64(qs.StreamID())+1)
	return nil
}

// parseGoingAway decodes a going-away body into counts by lane id.
func parseGoingAway(b []byte) (map[uint64]int64, bool) {
	if len(b) < goingAwayLen || (len(b)-goingAwayLen)%goingAwayLaneLen != 0 {
		return nil, false
	}
	opened := map[uint64]int64{0: int64(binary.BigEndian.Uint64(b))}
	for b = b[goingAwayLen:]; len(b) > 0; b = b[goingAwayLaneLen:] {
		opened[binary.BigEndian.Uint64(b)] = int64(binary.BigEndian.Uint64(b[laneIDLen:]))
	}
	return opened, true
}

// peerGoingAway handles the peer's going-away: answer in kind, then drain.
func (s *Session) peerGoingAway(peerOpened map[uint64]int64) {
	s.state.CompareAndSwap(int32(StateEstablished), int32(StateClosing))
	s.sendGoingAway()
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.drain.draining {
		return
	}
	s.drain.peerOpened = peerOpened
	s.drain.draining = true
	s.drainers.Add(1)
	go s.drainStreams(peerOpened)
}

// pastGoingAway reports whether the peer opened the stream id on a lane
// after it said going-away: such a stream is refused.
func (s *Session) pastGoingAway(lane uint64, id int64) bool {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.drain.peerOpened == nil {
		return false
	}
	return id >= s.drain.peerOpened[lane]
}

// acceptedAll reports whether every stream the peer announced has been
// accepted.
func (s *Session) acceptedAll(peerOpened map[uint64]int64) bool {
	for id, n := range peerOpened {
		l := s.laneByID(id)
		if l == nil && !s.laneGone(id) || l != nil && l.accepted.Load() < n {
			return false
		}
	}
	return true
}

// drainStreams waits for the last stream, then says drained.
func (s *Session) drainStreams(peerOpened map[uint64]int64) {
	defer s.drainers.Done()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for s.streams.Load() > 0 || !s.acceptedAll(peerOpened) {
		select {
		case <-t.C:
		case <-s.conn.Context().Done():
			return
		}
	}
	if err := s.writeCtl(ctlFrame{typ: ctlDrained}); err != nil {
		return
	}
	s.drainMu.Lock()
	s.drain.ownDrained = true
	both := s.drain.peerDrained
	s.drainMu.Unlock()
	if both {
		s.conn.CloseWithError(CodeGoingAway, "")
	}
}

// peerDrained handles the peer's drained; if we are drained too, close.
func (s *Session) peerDrained() {
	s.drainMu.Lock()
	s.drain.peerDrained = true
	both := s.drain.ownDrained
	s.drainMu.Unlock()
	if both {
		s.conn.CloseWithError(CodeGoingAway, "")
	}
}
