package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
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

// What ends an exchange early, besides a bound.
var (
	errClientGone   = fmt.Errorf("proxy: the client went away: %w", context.Canceled)
	errProxyClosing = errors.New("proxy: the proxy is shutting down")
)

// exchange is one request and its response on a stream. What ends it
// early aborts the stream, so that every Read and Write on it returns: the
// client going away (the request's context ends), the Server giving up on
// its connections (its context ends), the response timeout, or a request
// body that failed. The first cause is what RoundTrip reports.
//
// The response timeout runs from the start until the final response head
// (a 101 included); each read of the request's body, each write to the
// stream and each interim response restarts it, so that it bounds a silent
// service, not a long upload.
// The contexts are watched until the response body ends (release), so a
// client that leaves mid-body frees the stream, and on an upgraded
// connection until it closes.
type exchange struct {
	oc      *overlayConn
	timeout time.Duration
	timer   *time.Timer    // the response timeout
	stops   [2]func() bool // context.AfterFunc's, for the request's and the Server's context

	// bodyErr is a bound the request's body hit (clientBody), set by the
	// request writer: it is the cause, though the client's connection
	// failing ends the request's context first. Read it once the writer
	// has ended.
	bodyErr *limitError

	mu    sync.Mutex // guards cause, head and over, and the timer's Reset
	cause error      // what ended the exchange early
	head  bool       // the final response head came: the timer is off
	over  bool       // released: nothing aborts the stream any more
}

// begin starts the exchange of req on oc.
func (t streamTransport) begin(req *http.Request, cs *httpConn, oc *overlayConn) *exchange {
	ex := &exchange{oc: oc, timeout: t.s.cfg.Load().responseTimeout()}
	ex.timer = time.AfterFunc(ex.timeout, func() {
		err := newLimitError(limitResponseTime, KindTimeout,
			fmt.Sprintf("%s sent no response within %s", oc.where(), ex.timeout))
		if ex.abort(err, true) {
			cs.h.logLimit(err, oc.t, req.RemoteAddr)
		}
	})
	ex.stops[0] = context.AfterFunc(req.Context(), func() { ex.end(errClientGone) })
	ex.stops[1] = context.AfterFunc(t.s.ctx, func() { ex.end(errProxyClosing) })
	return ex
}

// end aborts the stream for cause, unless the exchange has ended already
// or is over. It reports whether cause is the one.
func (ex *exchange) end(cause error) bool { return ex.abort(cause, false) }

// abort is end; beforeHead makes it do nothing once the final response
// head has come (for the response timeout, which may fire as it comes).
func (ex *exchange) abort(cause error, beforeHead bool) bool {
	ex.mu.Lock()
	if ex.over || ex.cause != nil || beforeHead && ex.head {
		ex.mu.Unlock()
		return false
	}
	ex.cause = cause
	ex.mu.Unlock()
	ex.oc.st.Abort()
	return true
}

// ended returns what ended the exchange early, if anything did.
func (ex *exchange) ended() error {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.cause
}

// progress restarts the response timeout, until the final head.
func (ex *exchange) progress() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if !ex.head && !ex.over {
		ex.timer.Reset(ex.timeout)
	}
}

// headDone stops the response timeout: the final head came.
func (ex *exchange) headDone() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.head = true
	ex.timer.Stop()
}

// release ends the watch over the exchange; it reports whether the stream
// is intact: no cause aborted it.
func (ex *exchange) release() bool {
	for _, stop := range ex.stops {
		stop()
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.over = true
	ex.timer.Stop()
	return ex.cause == nil
}

// write sends req on the stream. When the request's body fails (the
// client went away, or stalled), the service would wait for the rest for
// good: the stream is aborted. When a write to the stream fails, the
// response read is left to tell why: the service may have answered early,
// or refused.
func (ex *exchange) write(req *http.Request) error {
	w := &streamWriter{ex: ex}
	out := req
	if req.Body != nil {
		r := *req // the same request, its body read through requestBody
		r.Body = &requestBody{ReadCloser: req.Body, ex: ex}
		out = &r
	}
	err := out.Write(w)
	if err != nil && w.err == nil {
		if ex.bodyErr != nil {
			ex.end(ex.bodyErr)
		} else {
			ex.end(errClientGone)
		}
	}
	return err
}

// requestBody is a request's body on its way to the stream: each read
// restarts the response timeout, since Request.Write buffers what it
// writes and a slow upload may write nothing for a while. It keeps the
// bound the body hit, which Request.Write's error hides.
type requestBody struct {
	io.ReadCloser
	ex *exchange
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.ex.progress()
	}
	var le *limitError
	if errors.As(err, &le) {
		b.ex.bodyErr = le
	}
	return n, err
}

// streamWriter writes to an exchange's stream, restarting the response
// timeout with each write, and keeps the first error.
type streamWriter struct {
	ex  *exchange
	err error
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n, err := w.ex.oc.st.Write(p)
	if err != nil {
		w.err = err
		return n, err
	}
	w.ex.progress()
	return n, nil
}

// maxErrorDetail bounds what an error body quotes of a service's answer.
const maxErrorDetail = 200

// failure is the error of an exchange whose response head could not be
// read (err): the cause that ended it early, if one did (a stall of the
// request's body rather than the client's connection failing, which the
// stall brings about; the writer has ended then), or else the overlay's own
// error as it came (the service's refusal comes with an early stream's
// first Read), or a sentence on what the service did wrong, which the
// client gets as its 502's body.
func (ex *exchange) failure(req *http.Request, cs *httpConn, err, cause error, answered bool) error {
	if cause == errClientGone && ex.bodyErr != nil {
		return ex.bodyErr
	}
	if cause != nil {
		return cause
	}
	oc := ex.oc
	where := oc.where()
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
	where := oc.where()
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
// to the client. Each interim response restarts the response timeout.
func (ex *exchange) readResponse(req *http.Request) (*http.Response, error) {
	for interim := 0; ; interim++ {
		resp, err := http.ReadResponse(ex.oc.br, req)
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
		ex.progress()
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil && code != http.StatusContinue {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}
