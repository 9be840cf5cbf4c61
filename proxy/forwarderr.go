package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// failLogEvery spaces out a forward's log lines for one kind of failure: a
// client that retries against a peer that is down makes one line per
// interval, with the count of those not logged.
const failLogEvery = 10 * time.Second

// failCounts are a forward's failed connections by ErrorKind.
type failCounts struct {
	n      [numKinds]atomic.Uint64
	logged [numKinds]atomic.Int64  // unix nanoseconds of the kind's last log line
	quiet  [numKinds]atomic.Uint64 // failures of the kind not logged since
}

// due reports whether a failure of kind k may be logged now, and how many
// were not logged since the last line.
func (c *failCounts) due(k ErrorKind) (bool, uint64) {
	now := time.Now().UnixNano()
	last := c.logged[k].Load()
	if now-last < int64(failLogEvery) || !c.logged[k].CompareAndSwap(last, now) {
		c.quiet[k].Add(1)
		return false, 0
	}
	return true, c.quiet[k].Swap(0)
}

// snapshot returns the counts by kind name; kinds that never happened are
// absent.
func (c *failCounts) snapshot() map[string]uint64 {
	var out map[string]uint64
	for k := range numKinds {
		if v := c.n[k].Load(); v > 0 {
			if out == nil {
				out = make(map[string]uint64)
			}
			out[k.String()] = v
		}
	}
	return out
}

// SetClassifier makes the forwarder tell the kinds of its dialer's errors
// with classify, for its counters and log lines (nil: deadlines are
// timeouts, the rest KindOther). Call it before Apply.
func (f *Forwarder) SetClassifier(classify Classifier) { f.classify = classify }

// failed counts a connection of fw that got no stream to its service, and
// logs it (at most once per failLogEvery and kind): err is the dialer's
// error, such as a peer known to be unreachable, or the service's refusal.
func (f *Forwarder) failed(fw Forward, err error) {
	if f.ctx.Err() != nil {
		return // the forwarder is closing: not the peer's doing
	}
	k := kindOf(err, f.classify)
	var suppressed uint64
	if l := f.listenerOf(fw.Listen); l != nil {
		l.fails.n[k].Add(1)
		var due bool
		if due, suppressed = l.fails.due(k); !due {
			return
		}
	}
	lvl := slog.LevelDebug
	if infoKind(k) {
		lvl = slog.LevelInfo
	}
	f.log.Log(context.Background(), lvl, "forward: connection refused", "listen", fw.Listen, "peer", fw.Peer,
		"service", fw.Service, "reason", k.String(), "err", err, "not_logged_since", suppressed)
}

// listenerOf returns the running listener of the forward at listen.
func (f *Forwarder) listenerOf(listen string) *listener {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byListen[listen]
}

// answerConn notices an early stream's refusal: the error of its first
// Read when it came before any byte and before this side aborted the stream
// (an early stream's answer comes with its first Read), such as the
// service's refusal or the loss of the session that was to carry it. It
// calls refused from that Read, so the failure is counted before Splice
// closes the client's connection and the client can look at the counters.
// Only Splice's reading goroutine touches read.
type answerConn struct {
	Conn
	classify Classifier
	refused  func(error)
	aborted  atomic.Bool // Abort was called (the client went away, say)
	read     bool
	answered chan struct{} // closed when the first Read returned
}

// answerWait bounds how long a failed Write waits for the answer that
// explains it.
const answerWait = 5 * time.Second

func newAnswerConn(c Conn, classify Classifier, refused func(error)) *answerConn {
	return &answerConn{Conn: c, classify: classify, refused: refused, answered: make(chan struct{})}
}

func (c *answerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.read && (n > 0 || err != nil) {
		c.read = true
		if n == 0 && !errors.Is(err, io.EOF) && !c.aborted.Load() && isRefusal(err, c.classify) {
			c.refused(err)
		}
		close(c.answered)
	}
	return n, err
}

// Write writes p. A refused stream fails writes as soon as the refusal
// arrives, which may be before the reading goroutine read the answer; the
// writer then waits for that answer, so that the abort that follows the
// failed Write does not hide why the stream ended.
func (c *answerConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		t := time.NewTimer(answerWait)
		select {
		case <-c.answered:
		case <-t.C:
		}
		t.Stop()
	}
	return n, err
}

func (c *answerConn) Abort() {
	c.aborted.Store(true)
	c.Conn.Abort()
}

// isRefusal reports whether err, the first answer on a stream, says why the
// stream got no answer: the far side's refusal, or a peer that stopped
// answering, not a stream this side cut.
func isRefusal(err error, classify Classifier) bool {
	switch kindOf(err, classify) {
	case KindUnknownService, KindAccessDenied, KindTargetRefused, KindTargetUnreachable, KindOverloaded, KindBadRequest,
		KindPeerUnreachable, KindTimeout:
		return true
	}
	return false
}
