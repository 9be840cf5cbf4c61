package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// clientBody is a plain request's body as its client sends it. Each Read
// must bring a byte within idle (the handshake timeout) of its start: it
// sets the client connection's read deadline, so that a client that
// announces a body and then stops sending it frees its slot and the stream
// (the exchange's request writer fails, the stream is aborted, the client
// gets 400). While the service reads nothing, no Read is under way and the
// client is not held to the deadline.
//
// The deadline is lifted at the body's end, where net/http starts reading
// the connection to notice the client going away (a deadline there would
// cancel the request). When the handler returns, a Read under way is cut
// short and later ones fail: net/http clears the deadline of a read in
// flight then, and reads what is left of the body itself (up to 256 KiB,
// to keep the connection), for which handlerDone sets a last deadline.
type clientBody struct {
	io.ReadCloser
	h      *httpProxy
	rc     *http.ResponseController
	idle   time.Duration
	remote string
	t      target // once resolved

	mu      sync.Mutex // guards the fields below and orders the deadlines with the handler's end
	reading bool       // a Read is under way
	read    sync.Cond  // on mu: signalled when a Read ends
	over    bool       // the handler has returned
	eof     bool       // the body has ended
}

// errHandlerDone is a clientBody's error for a Read after the handler.
var errHandlerDone = errors.New("proxy: the request is over")

// watchBody puts r's body under a clientBody. The handler then reads the
// body while the response goes out (full duplex), so that net/http does
// not read what is left of the body itself before it writes the response:
// only the exchange reads it, under the deadline.
func (h *httpProxy) watchBody(w http.ResponseWriter, r *http.Request, idle time.Duration) *clientBody {
	b := &clientBody{ReadCloser: r.Body, h: h, rc: http.NewResponseController(w), idle: idle, remote: r.RemoteAddr}
	b.read.L = &b.mu
	b.rc.EnableFullDuplex()
	b.rc.SetReadDeadline(time.Now().Add(idle)) // for what net/http reads if the request fails early
	r.Body = b
	return b
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.over {
		b.mu.Unlock()
		return 0, errHandlerDone
	}
	b.reading = true
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	b.mu.Unlock()

	n, err := b.ReadCloser.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.read.Broadcast()
	switch {
	case b.over:
		return n, errHandlerDone // cut short by handlerDone
	case err == io.EOF:
		b.eof = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		le := newLimitError(limitBodyIdle, KindHandshake, fmt.Sprintf("the request body stalled: no byte came for %s", b.idle))
		b.h.logLimit(le, b.t, b.remote)
		return n, le
	}
	return n, err
}

// done reports whether the body has ended.
func (b *clientBody) done() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

// handlerDone is deferred by the handler. It cuts short a Read under way
// (the exchange's request writer may outlive the handler), and gives what
// net/http then reads of an unfinished body a deadline.
func (b *clientBody) handlerDone() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.over = true
	if b.reading {
		b.rc.SetReadDeadline(time.Unix(1, 0))
		for b.reading {
			b.read.Wait()
		}
	}
	if !b.eof {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
}

// bodyDone reports whether r has no body, or its body has ended.
func bodyDone(r *http.Request) bool {
	b, _ := r.Context().Value(bodyKey{}).(*clientBody)
	return b == nil || b.done()
}
