package transport

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stream is one proxied connection inside a session. Read and Write carry
// payload; CloseWrite sends a FIN (half-close); Close releases the stream;
// Abort resets it both ways.
type Stream struct {
	qs      rawStream
	sess    *Session
	lane    *lane
	inbound bool // counted in sess.inbound (admitInbound)
	once    sync.Once
	// pending is the answer an early stream still waits for; only the
	// reading goroutine touches it and err.
	pending *pendingResponse
	err     error
	// pipelined is the accepted request's flag (see Request.Pipelined);
	// held is set while an OK answer waits in ok (see Respond).
	pipelined bool
	held      atomic.Bool
	ok        *heldAnswer
	flow      *Flow // the udp flow the stream carries, if any
}

type pendingResponse struct {
	timeout time.Duration
	service string
	onFail  func(error)
}

// Session returns the session the stream belongs to.
func (st *Stream) Session() *Session { return st.sess }

// Read reads payload. On a stream opened early, the first Read waits for the
// answer and returns its error, if any, from then on.
func (st *Stream) Read(p []byte) (int, error) {
	if st.pending != nil {
		st.awaitResponse()
	}
	if st.err != nil {
		return 0, st.err
	}
	return st.qs.Read(p)
}

func (st *Stream) awaitResponse() {
	pr := st.pending
	st.pending = nil
	st.qs.SetReadDeadline(time.Now().Add(pr.timeout))
	resp, err := ReadResponse(st.qs)
	st.qs.SetReadDeadline(time.Time{})
	if err != nil {
		st.err = st.sess.errOr(err)
		st.Abort()
		if pr.onFail != nil {
			pr.onFail(st.err)
		}
		return
	}
	if resp.Status != StatusOK {
		st.err = &StatusError{Status: resp.Status, Service: pr.service}
		st.Abort()
	}
}

func (st *Stream) Write(p []byte) (int, error) {
	if st.held.Load() {
		if n, sent, err := st.ok.sendWith(st, p); sent {
			return n, err
		}
	}
	return st.qs.Write(p)
}

// SetReadDeadline sets the read deadline.
func (st *Stream) SetReadDeadline(t time.Time) error { return st.qs.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (st *Stream) SetWriteDeadline(t time.Time) error { return st.qs.SetWriteDeadline(t) }

// ReadRequest reads the stream's request header within timeout.
func (st *Stream) ReadRequest(timeout time.Duration) (Request, error) {
	st.qs.SetReadDeadline(time.Now().Add(timeout))
	defer st.qs.SetReadDeadline(time.Time{})
	req, err := ReadRequest(st.qs)
	st.pipelined = req.Pipelined
	return req, err
}

// Respond sends the answer to the stream's request. A non-OK answer also
// ends the stream. An OK answer to a pipelined request is held back until
// the first payload, CloseWrite or Close, or heldAnswerDelay, whichever
// comes first, and shares the first payload's packet.
func (st *Stream) Respond(status Status) error {
	b, _ := Response{Status: status}.AppendBinary(nil)
	if status == StatusOK && st.pipelined {
		st.hold(b)
		return nil
	}
	_, err := st.qs.Write(b)
	if status != StatusOK {
		st.qs.Close()
		st.qs.CancelRead(StreamRefused)
		st.release()
	}
	return err
}

// CloseWrite half-closes the stream: the peer reads EOF after the data sent so far.
func (st *Stream) CloseWrite() error {
	if err := st.flushHeld(); err != nil {
		return err
	}
	return st.qs.Close()
}

// CloseRead stops reading; the peer's writes fail.
func (st *Stream) CloseRead() { st.qs.CancelRead(StreamAborted) }

// Close finishes the write side (if still open) and stops reading.
func (st *Stream) Close() error {
	err := st.flushHeld()
	if cerr := st.qs.Close(); err == nil {
		err = cerr
	}
	st.qs.CancelRead(0)
	st.release()
	return err
}

// AbortWith resets the stream in both directions with code.
func (st *Stream) AbortWith(code StreamCode) {
	st.dropHeld()
	st.qs.CancelWrite(code)
	st.qs.CancelRead(code)
	st.release()
}

// Abort resets the stream in both directions.
func (st *Stream) Abort() { st.AbortWith(StreamAborted) }

func (st *Stream) release() {
	st.once.Do(func() {
		st.sess.streams.Add(-1)
		if st.inbound {
			st.sess.inbound.Add(-1)
		}
		st.lane.release()
	})
}
