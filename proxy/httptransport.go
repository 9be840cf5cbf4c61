package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// writeGrace is how long the end of a response waits for the request's
// writer to finish before the stream is given up instead of kept: a target
// may answer before it has read the whole body.
const writeGrace = 100 * time.Millisecond

// streamTransport is the HTTP proxy's http.RoundTripper: it carries a plain
// request over an overlay stream. Each client connection (httpConn) has at
// most one stream, kept between requests while the target stays the same;
// a request to another target closes it and opens a new one. Streams are
// opened early (Overlay.DialService): the request head travels with the
// stream header, and a refusal comes back as the response's read error.
type streamTransport struct{ s *Server }

// overlayConn is a stream that carries HTTP/1.1 exchanges to one target.
type overlayConn struct {
	t  target
	st Conn
	cr countingReader
	br *bufio.Reader // reads cr
	// kept is cr.n when the stream was last kept: where the next response
	// begins. next, while the stream is kept or was, is closed when the
	// idle watcher has let go of br (put).
	kept int64
	next chan struct{}
}

// where names oc's service for error lines.
func (oc *overlayConn) where() string {
	return fmt.Sprintf("service %q on peer %q", oc.t.service, oc.t.peer)
}

// countingReader counts the bytes read from r and keeps r's last error,
// which tells the overlay's errors (a refusal, a reset stream) from what
// was wrong with the bytes. While limit is set, n does not pass it: Read
// fails with errResponseHead instead.
type countingReader struct {
	r     Conn
	n     int64
	limit int64 // 0: none
	err   error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit > 0 {
		if c.n >= c.limit {
			return 0, errResponseHead
		}
		p = p[:min(int64(len(p)), c.limit-c.n)]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

func (t streamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	cs, _ := ctx.Value(connKey{}).(*httpConn)
	tg, ok := ctx.Value(targetKey{}).(target)
	if cs == nil || !ok {
		return nil, errors.New("proxy: request without a client connection or target")
	}
	for first := true; ; first = false {
		oc, reused, err := t.take(ctx, cs, tg)
		if err != nil {
			return nil, err
		}
		resp, unanswered, err := t.send(req, cs, oc)
		// A kept stream may have been closed by the target while idle.
		// Like net/http's Transport, send the request again on a new
		// stream if the old one ended with no answer at all, but only a
		// request that may be carried out twice.
		if err != nil && reused && first && unanswered && replayable(req) {
			continue
		}
		return resp, err
	}
}

// replayable reports whether req may be sent again after a stream that
// may have carried it ended without an answer: the target may have run it
// before the stream broke. It is net/http's rule (Request.isReplayable): no
// body (a body is gone once read), and an idempotent method or an
// Idempotency-Key header; a DELETE or a POST is sent once.
func replayable(req *http.Request) bool {
	if req.Body != nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// take returns cs's stream if it goes to tg, or closes it and opens one.
func (t streamTransport) take(ctx context.Context, cs *httpConn, tg target) (*overlayConn, bool, error) {
	cs.mu.Lock()
	oc := cs.idle
	cs.idle = nil
	cs.mu.Unlock()
	if oc != nil {
		if oc.t == tg {
			return oc, true, nil
		}
		oc.st.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, t.s.cfg.Load().dialTimeout())
	defer cancel()
	stop := context.AfterFunc(t.s.ctx, cancel) // the Server gave up waiting
	defer stop()
	st, err := t.s.ov.DialService(ctx, tg.peer, tg.service)
	if err != nil {
		return nil, false, err
	}
	oc = &overlayConn{t: tg, st: st, cr: countingReader{r: st}}
	oc.br = bufio.NewReader(&oc.cr)
	return oc, false, nil
}

// put keeps oc for cs's next request, unless cs has closed. While it is
// kept, a goroutine (watch) waits for its next byte: a byte, or the
// stream's end, that comes while no request is out ends the stream, so that
// it is never taken for the answer to the next request. A request that
// takes the stream waits for the watcher to let go of it: its answer's
// first byte, or the stream's end, ends the wait.
func (t streamTransport) put(cs *httpConn, oc *overlayConn) {
	cs.mu.Lock()
	if cs.closed || cs.idle != nil {
		cs.mu.Unlock()
		oc.st.Close()
		return
	}
	cs.idle = oc
	oc.kept = oc.cr.n
	oc.next = make(chan struct{})
	cs.mu.Unlock()
	t.s.wg.Add(1) // the handler holds the WaitGroup: no race with Wait
	go func() {
		defer t.s.wg.Done()
		cs.watch(oc)
	}()
}

// watch waits for the next byte of oc, kept by put. Its stream ends when
// cs's connection closes, or another target takes its place (the stream is
// closed), or a request takes it and the answer comes (or the exchange
// aborts the stream).
func (cs *httpConn) watch(oc *overlayConn) {
	_, err := oc.br.Peek(1)
	cs.mu.Lock()
	idle := cs.idle == oc
	if idle {
		cs.idle = nil
	}
	cs.mu.Unlock()
	switch {
	case idle && err == io.EOF:
		oc.st.Close() // the service closed it, as it may while idle
	case idle:
		oc.st.Abort() // bytes no request asked for
	}
	close(oc.next)
}

// shut closes cs's kept stream; put closes any later one.
func (cs *httpConn) shut() {
	cs.mu.Lock()
	oc := cs.idle
	cs.idle, cs.closed = nil, true
	cs.mu.Unlock()
	if oc != nil {
		oc.st.Close()
	}
}

// send writes req on oc and reads the response head. unanswered reports
// that the stream ended before any byte of a response came back, and not
// for a cause of the proxy's (the client leaving, a timeout). The request
// is written by a goroutine of its own, so that a target that answers
// before it has read the whole request body (or while it reads it) does
// not deadlock.
func (t streamTransport) send(req *http.Request, cs *httpConn, oc *overlayConn) (*http.Response, bool, error) {
	ex := t.begin(req, cs, oc)
	wrote := make(chan error, 1)
	t.s.wg.Add(1) // the handler holds the WaitGroup: no race with Wait
	go func() {
		defer t.s.wg.Done()
		wrote <- ex.write(req)
	}()
	if oc.next != nil {
		<-oc.next // the idle watcher lets go of br
		oc.next = nil
	}
	before := oc.kept
	oc.cr.limit = before + httpMaxResponseHead
	resp, err := ex.readResponse(req)
	oc.cr.limit = 0
	if err != nil {
		cause := ex.ended() // or else err is the service's doing
		oc.st.Abort()
		if cause == errClientGone {
			// The client's connection failed, which may be its body's
			// stall: see what the writer's read of it says.
			<-wrote
		}
		ex.release()
		answered := oc.cr.n > before
		return nil, !answered && cause == nil, ex.failure(req, cs, err, cause, answered)
	}
	ex.headDone()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := oc.checkUpgrade(req, resp); err != nil {
			oc.st.Abort()
			ex.release()
			return nil, false, err
		}
		resp.Body = upgradedBody{ex}
		return resp, false, nil
	}
	resp.Body = &streamBody{body: resp.Body, ex: ex, t: t, cs: cs, wrote: wrote,
		keep: !resp.Close && !req.Close, bodyless: req.Body == nil}
	return resp, false, nil
}

// streamBody is a response body on an overlay stream. At its end the
// stream is kept for the next request if both sides allow it; closed
// early, it resets the stream.
type streamBody struct {
	body     io.ReadCloser
	ex       *exchange
	t        streamTransport
	cs       *httpConn
	wrote    chan error // the request writer's result
	keep     bool       // neither side asked to close
	bodyless bool       // the request had no body
	done     bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.finish()
	}
	return n, err
}

// finish decides the stream's fate at the end of the response.
func (b *streamBody) finish() {
	oc := b.ex.oc
	var werr error
	if b.bodyless {
		werr = <-b.wrote // a head only: written already, or failing
	} else {
		t := time.NewTimer(writeGrace)
		select {
		case werr = <-b.wrote:
			t.Stop()
		case <-t.C:
			// The target answered before it had the whole body; the
			// stream cannot carry another request.
			b.ex.release()
			oc.st.Abort()
			return
		}
	}
	intact := b.ex.release()
	switch {
	case werr != nil || !intact:
		oc.st.Abort()
	case oc.br.Buffered() > 0:
		// Bytes past the end of the response: they must not be taken
		// for the answer to the next request.
		oc.st.Abort()
	case !b.keep:
		oc.st.Close()
	default:
		b.t.put(b.cs, oc)
	}
}

func (b *streamBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	b.ex.release()
	b.ex.oc.st.Abort() // before Close, which would read the rest
	b.body.Close()
	return nil
}

// upgradedBody is the stream after a 101 Switching Protocols: ReverseProxy
// copies both ways through it, and closes it when either way ends. Until
// then the Server's closing aborts it.
type upgradedBody struct{ ex *exchange }

func (u upgradedBody) Read(p []byte) (int, error)  { return u.ex.oc.br.Read(p) }
func (u upgradedBody) Write(p []byte) (int, error) { return u.ex.oc.st.Write(p) }
func (u upgradedBody) Close() error {
	u.ex.release()
	return u.ex.oc.st.Close()
}
