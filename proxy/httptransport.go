package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"time"
)

// Bounds of a service's answer, before its body. A service over one gets
// its stream aborted and the client a 502 that says which.
const (
	// httpMaxResponseHead bounds the bytes of a response head, the
	// interim (1xx) heads before it included: the 64 KiB a client's request
	// head may have (httpMaxHeaderBytes). nginx stops at 4 or 8 KiB by
	// default; net/http's Transport at 10 MiB.
	httpMaxResponseHead = httpMaxHeaderBytes
	// httpMaxInterim bounds the interim responses (100 Continue, 102
	// Processing, 103 Early Hints) before the final one; those other than
	// 100 are relayed to the client.
	httpMaxInterim = 16
)

// errResponseHead is countingReader's error past its limit.
var errResponseHead = errors.New("proxy: response head over its bound")

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
		resp, answered, err := t.exchange(req, cs, oc)
		// A kept stream may have been closed by the target while idle.
		// Like net/http's Transport, send the request again on a new
		// stream if the old one gave no answer at all, but only a request
		// that may be carried out twice.
		if err != nil && reused && first && !answered && replayable(req) {
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
	st, err := t.s.ov.DialService(ctx, tg.peer, tg.service)
	if err != nil {
		return nil, false, err
	}
	oc = &overlayConn{t: tg, st: st, cr: countingReader{r: st}}
	oc.br = bufio.NewReader(&oc.cr)
	return oc, false, nil
}

// put keeps oc for cs's next request, unless cs has closed.
func (cs *httpConn) put(oc *overlayConn) {
	cs.mu.Lock()
	if cs.closed || cs.idle != nil {
		cs.mu.Unlock()
		oc.st.Close()
		return
	}
	cs.idle = oc
	cs.mu.Unlock()
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

// exchange writes req on oc and reads the response head. answered reports
// whether any byte of a response came back. The request is written by a
// goroutine of its own, so that a target that answers before it has read
// the whole request body (or while it reads it) does not deadlock.
func (t streamTransport) exchange(req *http.Request, cs *httpConn, oc *overlayConn) (*http.Response, bool, error) {
	wrote := make(chan error, 1)
	t.s.wg.Add(1) // the handler holds the WaitGroup: no race with Wait
	go func() {
		defer t.s.wg.Done()
		wrote <- req.Write(oc.st)
	}()
	before := oc.cr.n
	oc.cr.limit = before + httpMaxResponseHead
	resp, err := readResponse(oc.br, req)
	oc.cr.limit = 0
	if err != nil {
		oc.st.Abort()
		answered := oc.cr.n > before
		return nil, answered, t.answerError(req, cs, oc, err, answered)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := oc.checkUpgrade(req, resp); err != nil {
			oc.st.Abort()
			return nil, true, err
		}
		resp.Body = upgradedBody{oc}
		return resp, true, nil
	}
	resp.Body = &streamBody{body: resp.Body, oc: oc, cs: cs, wrote: wrote,
		keep: !resp.Close && !req.Close, bodyless: req.Body == nil}
	return resp, true, nil
}

// maxErrorDetail bounds what an error body quotes of a service's answer.
const maxErrorDetail = 200

// answerError is the error of a response head that could not be read: the
// overlay's own error as it came (the service's refusal comes with an early
// stream's first Read), or a sentence on what the service did wrong, which
// the client gets as its 502's body.
func (t streamTransport) answerError(req *http.Request, cs *httpConn, oc *overlayConn, err error, answered bool) error {
	where := fmt.Sprintf("service %q on peer %q", oc.t.service, oc.t.peer)
	switch {
	case errors.Is(err, errResponseHead):
		return cs.h.limitHit(limitResponseHead, oc.t, req.RemoteAddr, KindOther,
			fmt.Sprintf("%s sent a response head over %d KiB", where, httpMaxResponseHead>>10))
	case errors.Is(err, errInterim):
		return cs.h.limitHit(limitInterim, oc.t, req.RemoteAddr, KindOther,
			fmt.Sprintf("%s sent more than %d interim (1xx) responses", where, httpMaxInterim))
	case oc.cr.err != nil && oc.cr.err != io.EOF && errors.Is(err, oc.cr.err):
		return err
	case oc.cr.err == io.EOF && !answered:
		return refuse(KindOther, where+" closed the connection without an answer")
	case oc.cr.err == io.EOF && errors.Is(err, io.ErrUnexpectedEOF):
		return refuse(KindOther, where+" closed the connection in the middle of its response head")
	}
	return refuse(KindOther, "the answer of "+where+" was not valid HTTP: "+clip(err.Error()))
}

// clip cuts s, an error that quotes a service's bytes (net/http quotes
// them with %q, so it holds no line break), to maxErrorDetail bytes of
// valid UTF-8.
func clip(s string) string {
	if len(s) <= maxErrorDetail {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorDetail], "") + "..."
}

// checkUpgrade accepts a 101 Switching Protocols only to the protocol the
// request asked for. ReverseProxy answers any other 101 with an error and
// drops the response without closing its body, which would leave the
// stream open with nobody to read it.
func (oc *overlayConn) checkUpgrade(req *http.Request, resp *http.Response) error {
	asked, got := upgradeType(req.Header), upgradeType(resp.Header)
	where := fmt.Sprintf("service %q on peer %q", oc.t.service, oc.t.peer)
	if asked == "" {
		return refuse(KindOther, where+" answered 101 Switching Protocols to a request that asked for no upgrade")
	}
	if !asciiEqualFold(asked, got) {
		return refuse(KindOther, clip(fmt.Sprintf("%s answered 101 Switching Protocols to %q when the request asked for %q", where, got, asked)))
	}
	return nil
}

// upgradeType is the protocol an Upgrade header asks for or switches to,
// if the Connection header names Upgrade; ReverseProxy's rule.
func upgradeType(h http.Header) string {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if asciiEqualFold(strings.Trim(tok, " \t"), "Upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// asciiEqualFold reports whether a and b are equal but for the case of
// ASCII letters, and printable ASCII: the comparison ReverseProxy makes, in
// which "ſ" is not "s" (strings.EqualFold would make it so).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if x < ' ' || x > '~' || y < ' ' || y > '~' {
			return false
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// errInterim is readResponse's error past httpMaxInterim.
var errInterim = errors.New("proxy: too many interim responses")

// readResponse reads the final response, passing at most httpMaxInterim
// interim ones, other than 100 Continue (net/http's server sends its own),
// to the client.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for interim := 0; ; interim++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if interim == httpMaxInterim {
			return nil, errInterim
		}
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil && code != http.StatusContinue {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// streamBody is a response body on an overlay stream. At its end the
// stream is kept for the next request if both sides allow it; closed
// early, it resets the stream.
type streamBody struct {
	body     io.ReadCloser
	oc       *overlayConn
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
			b.oc.st.Abort()
			return
		}
	}
	switch {
	case werr != nil:
		b.oc.st.Abort()
	case !b.keep:
		b.oc.st.Close()
	default:
		b.cs.put(b.oc)
	}
}

func (b *streamBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	b.oc.st.Abort() // before Close, which would read the rest
	b.body.Close()
	return nil
}

// upgradedBody is the stream after a 101 Switching Protocols: ReverseProxy
// copies both ways through it.
type upgradedBody struct{ oc *overlayConn }

func (u upgradedBody) Read(p []byte) (int, error)  { return u.oc.br.Read(p) }
func (u upgradedBody) Write(p []byte) (int, error) { return u.oc.st.Write(p) }
func (u upgradedBody) Close() error                { return u.oc.st.Close() }
