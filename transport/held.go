package transport

import (
	"sync"
	"time"
)

// heldAnswerDelay bounds how long an OK answer to a pipelined request waits
// for payload to travel with. A target that answers at once (an echo, an
// HTTP server on the same host) saves a packet each way: the OK's own and
// the ACK the opener would send for it. A slower one costs the opener
// nothing, as it does not wait for the answer before writing.
const heldAnswerDelay = 5 * time.Millisecond

// coalesceMax is how much of the first payload is copied to share the held
// answer's write; the rest is written as it is.
const coalesceMax = 1200

// heldAnswer is an OK answer not yet written. Its mutex orders the answer's
// write before any payload's.
type heldAnswer struct {
	mu    sync.Mutex
	b     []byte // the encoded answer; nil once written or dropped
	timer *time.Timer
}

// hold keeps answer b back; see Respond.
func (st *Stream) hold(b []byte) {
	h := &heldAnswer{b: b}
	h.mu.Lock() // the timer's flush reads h.timer
	defer h.mu.Unlock()
	st.ok = h
	st.held.Store(true)
	h.timer = time.AfterFunc(heldAnswerDelay, func() { st.flushHeld() })
}

// take returns the held answer and forgets it, or nil when it is gone.
// The caller holds h.mu, writes the answer and only then, still holding
// h.mu, clears st.held: a Write that saw held set waits for h.mu, so it
// cannot put payload on the stream before the answer (and a Write that
// sees it clear comes after the answer's write).
func (h *heldAnswer) take(st *Stream) []byte {
	if !st.held.Load() || h.b == nil {
		return nil
	}
	b := h.b
	h.b = nil
	h.timer.Stop()
	return b
}

// sendWith writes the held answer together with the start of p, then the
// rest of p. sent is false when the answer was already gone and p is still
// to be written.
func (h *heldAnswer) sendWith(st *Stream, p []byte) (n int, sent bool, err error) {
	h.mu.Lock()
	b := h.take(st)
	if b == nil {
		h.mu.Unlock()
		return 0, false, nil
	}
	k := min(len(p), coalesceMax)
	first := append(make([]byte, 0, len(b)+k), b...)
	_, err = st.qs.Write(append(first, p[:k]...))
	st.held.Store(false)
	h.mu.Unlock()
	if err != nil || k == len(p) {
		return k, true, err
	}
	n, err = st.qs.Write(p[k:])
	return k + n, true, err
}

// flushHeld writes the held answer alone, if there is one.
func (st *Stream) flushHeld() error {
	if !st.held.Load() {
		return nil
	}
	h := st.ok
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.take(st); b != nil {
		_, err := st.qs.Write(b)
		st.held.Store(false)
		return err
	}
	return nil
}

// dropHeld forgets the held answer of a stream being reset.
func (st *Stream) dropHeld() {
	if st.held.CompareAndSwap(true, false) {
		st.ok.timer.Stop()
	}
}
