package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTP proxy takes two kinds of request, both naming
// <service>.<peer>.p2p:
//
//   - CONNECT service.peer.p2p:PORT (any port), for TLS, gRPC or anything:
//     once the service has answered, "200 Connection established" and then
//     the connection's bytes both ways, half-close carried.
//   - absolute-form plain HTTP (GET http://service.peer.p2p/path), as curl -x
//     and http_proxy= send it: the request goes on in origin form over an
//     overlay stream with hop-by-hop headers (Connection and the fields it
//     names, Proxy-Connection, Keep-Alive, Proxy-Authorization, TE except
//     "trailers", Trailer, Transfer-Encoding, Upgrade) removed and Via
//     added, as RFC 9110 §7.6 asks (net/http/httputil.ReverseProxy does the
//     header work). One client connection keeps its stream between requests
//     while they go to the same service, and opens a new one when the
//     service changes.
//
// Failures are answered with a status and a one-line text body naming the
// overlay's error (httpStatus): 403 access denied or a name outside .p2p,
// 404 unknown peer or service, 502 target refused or unreachable and peer
// unreachable, 503 overloaded, 504 timeout, 400 a malformed request, 407
// missing or wrong credentials; 502 with what the service did wrong when
// its answer is not HTTP, or over a bound. The request head must arrive
// within the handshake timeout; an idle client connection is closed after
// httpIdleTimeout.
//
// A plain request's exchange with the service is bounded (httpexchange.go):
// the response head must begin within Config.ResponseTimeout of the
// request's last progress (504), and may have 64 KiB (httpMaxResponseHead)
// and 16 interim responses (httpMaxInterim) (502). A request's body must
// bring a byte within the handshake timeout of each read (httpbody.go;
// 400). The stream is aborted when the client goes away, before or during
// the response, and when the Server's Close runs out of time. A request
// that ends at a bound is logged at most once per 10 s and bound
// (limitHit).
const (
	httpIdleTimeout    = 60 * time.Second
	httpMaxHeaderBytes = 64 << 10
	viaHeader          = "1.1 p2pd"
	connectEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"
)

// Context keys of the HTTP proxy's requests.
type (
	connKey   struct{} // *httpConn of the client connection
	targetKey struct{} // the request's target
	bodyKey   struct{} // the request's *clientBody, if it has a body
)

// httpProxy is one HTTP listener's handler.
type httpProxy struct {
	s  *Server
	l  *proxyListener
	rp *httputil.ReverseProxy
	// limitLog holds, for each bound, when a request that ended at it was
	// last logged (unix nanoseconds; limitHit).
	limitLog [numHTTPLimits]atomic.Int64
}

// httpConn is the state of one client connection.
type httpConn struct {
	h        *httpProxy
	hijacked atomic.Bool // by CONNECT or a protocol upgrade
	released sync.Once

	mu     sync.Mutex   // guards idle and closed
	idle   *overlayConn // the stream kept for the next request, or nil
	closed bool         // the client connection has closed
}

// release gives the connection's slot back to its listener, once.
func (cs *httpConn) release() { cs.released.Do(cs.h.l.g.done) }

func (s *Server) newHTTPServer(l *proxyListener) *http.Server {
	h := &httpProxy{s: s, l: l}
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	h.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      streamTransport{s},
		ModifyResponse: modifyResponse,
		ErrorHandler:   h.proxyError,
		ErrorLog:       errLog,
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.Load().handshakeTimeout(),
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          errLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cs := &httpConn{h: h}
			l.conns.Store(c, cs)
			return context.WithValue(ctx, connKey{}, cs)
		},
		ConnState: func(c net.Conn, state http.ConnState) {
			v, ok := l.conns.Load(c)
			if !ok {
				return
			}
			cs := v.(*httpConn)
			switch state {
			case http.StateNew, http.StateIdle: // waiting for a request head
				l.g.markIdle(c)
				return
			case http.StateActive:
				l.g.markBusy(c)
				return
			}
			l.g.markBusy(c)
			l.conns.Delete(c)
			cs.shut()
			if state == http.StateHijacked {
				cs.hijacked.Store(true) // the handler releases the slot when it is done
			} else {
				cs.release()
			}
		},
	}
}

// modifyResponse adds Via to a service's response. If the client has not
// sent its whole body yet (the service answered early), the client
// connection closes after the response: what the client still sends must
// not be read as its next request.
func modifyResponse(r *http.Response) error {
	r.Header.Add("Via", viaHeader)
	if r.StatusCode != http.StatusSwitchingProtocols && !bodyDone(r.Request) {
		r.Header.Set("Connection", "close")
	}
	return nil
}

// rewrite makes the outbound request. ReverseProxy has removed the
// hop-by-hop headers; a forward proxy also passes on what ReverseProxy
// drops for a reverse one: the client's Forwarded and X-Forwarded-*
// headers, and the query exactly as the client sent it.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	for _, name := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[name]; ok && !connectionNames(pr.In.Header, name) {
			pr.Out.Header[name] = v
		}
	}
	pr.Out.Header.Add("Via", viaHeader)
}

// connectionNames reports whether the Connection header lists name.
func connectionNames(h http.Header, name string) bool {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

func (h *httpProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.s.enter() {
		writeFailure(w, r, http.StatusServiceUnavailable, "p2pd: the proxy is shutting down")
		return
	}
	defer h.s.wg.Done()
	cs, _ := r.Context().Value(connKey{}).(*httpConn)
	if cs == nil {
		writeFailure(w, r, http.StatusInternalServerError, "p2pd: request without a client connection")
		return
	}
	defer func() {
		if cs.hijacked.Load() {
			cs.release()
		}
	}()
	cfg := h.s.cfg.Load()
	var body *clientBody
	if r.Method != http.MethodConnect && r.ContentLength != 0 {
		body = h.watchBody(w, r, cfg.handshakeTimeout())
		defer body.handlerDone()
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, body))
	}
	if cfg.Username != "" && !proxyAuthOK(r.Header, cfg) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="p2pd"`)
		h.fail(w, r, target{}, refuse(KindAuth, "http proxy credentials missing or wrong"))
		return
	}
	host, err := requestHost(r)
	if err != nil {
		h.fail(w, r, target{service: r.Host}, err)
		return
	}
	t, err := resolveTarget(h.s.ov, host)
	if err != nil {
		h.fail(w, r, t, err)
		return
	}
	if r.Method == http.MethodConnect {
		h.connect(w, r, cfg, t)
		return
	}
	if body != nil {
		body.t = t
	}
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, t)))
}

// requestHost returns the host a proxy request names, without its port:
// CONNECT's authority, or the host of an absolute http:// URL.
func requestHost(r *http.Request) (string, error) {
	if r.Method == http.MethodConnect {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			return "", refuse(KindBadRequest, "CONNECT without a host")
		}
		return host, nil
	}
	if !r.URL.IsAbs() || r.URL.Host == "" {
		return "", refuse(KindBadRequest, "not a proxy request: send http://<service>.<peer>.p2p/... URLs (curl -x, http_proxy=)")
	}
	if !strings.EqualFold(r.URL.Scheme, "http") {
		return "", refuse(KindBadRequest, "only http:// URLs are forwarded; "+r.URL.Scheme+":// goes through CONNECT")
	}
	return r.URL.Hostname(), nil
}

// connect serves a CONNECT request to t.
func (h *httpProxy) connect(w http.ResponseWriter, r *http.Request, cfg *Config, t target) {
	ctx, cancel := context.WithTimeout(r.Context(), cfg.dialTimeout())
	remote, err := h.s.ov.DialServiceAnswered(ctx, t.peer, t.service)
	cancel()
	if err != nil {
		h.fail(w, r, t, err)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		remote.Abort()
		return
	}
	local := NetConn(c)
	if local == nil {
		c.Close()
		remote.Abort()
		return
	}
	c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, connectEstablished); err != nil {
		local.Abort()
		remote.Abort()
		return
	}
	// What the client sent after its request head (a TLS ClientHello, say)
	// waits in net/http's reader.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := remote.Write(b); err != nil {
			local.Abort()
			remote.Abort()
			return
		}
	}
	stop := context.AfterFunc(h.s.ctx, func() { local.Abort(); remote.Abort() })
	defer stop()
	if _, _, err := Splice(local, remote); err != nil {
		h.s.log.Debug("http proxy: CONNECT connection aborted", "peer", t.peer, "service", t.service, "err", err)
	}
}

// proxyError is the ReverseProxy's error handler.
func (h *httpProxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) || h.s.ctx.Err() != nil {
		return // the client went away, or the Server gave up waiting
	}
	t, _ := r.Context().Value(targetKey{}).(target)
	h.fail(w, r, t, err)
}

// fail answers a failed request, counts and logs it; a request that ended
// at a bound was logged where the bound was found (limitHit).
func (h *httpProxy) fail(w http.ResponseWriter, r *http.Request, t target, err error) {
	k := kindOf(err, h.s.classify)
	h.l.count(k)
	var le *limitError
	if !errors.As(err, &le) {
		h.s.logFailure(KindHTTP, t, k, r.RemoteAddr, err)
	}
	if !bodyDone(r) {
		w.Header().Set("Connection", "close") // as in modifyResponse
	}
	writeFailure(w, r, httpStatus(k), failureLine(k, t, err))
}

// httpLimit is one of the bounds of the plain-HTTP path.
type httpLimit uint8

const (
	limitResponseHead httpLimit = iota // httpMaxResponseHead
	limitInterim                       // httpMaxInterim
	limitResponseTime                  // Config.ResponseTimeout
	limitBodyIdle                      // the handshake timeout, for each read of a request body
	numHTTPLimits
)

var httpLimitNames = [numHTTPLimits]string{
	limitResponseHead: "response_head_bytes",
	limitInterim:      "interim_responses",
	limitResponseTime: "response_timeout",
	limitBodyIdle:     "request_body_idle",
}

// limitError is a request that ended at one of the bounds; its
// requestError is the client's answer.
type limitError struct {
	limit httpLimit
	err   *requestError
}

func newLimitError(limit httpLimit, kind ErrorKind, msg string) *limitError {
	return &limitError{limit: limit, err: &requestError{kind: kind, msg: msg}}
}

func (e *limitError) Error() string { return e.err.Error() }
func (e *limitError) Unwrap() error { return e.err }

// logLimit logs that a request to t from remote ended at a bound: at most
// once per failLogEvery and bound, since a service or a client can hit a
// bound with every request (the listener's error counters count them all).
func (h *httpProxy) logLimit(err *limitError, t target, remote string) {
	if logDue(&h.limitLog[err.limit]) {
		h.s.log.Warn("http proxy: request ended at a bound", "limit", httpLimitNames[err.limit],
			"peer", t.peer, "service", t.service, "remote", remote, "err", err)
	}
}

// limitHit returns the error of a request to t from remote that ended at
// limit, and logs it (logLimit).
func (h *httpProxy) limitHit(limit httpLimit, t target, remote string, kind ErrorKind, msg string) error {
	err := newLimitError(limit, kind, msg)
	h.logLimit(err, t, remote)
	return err
}

// httpStatus is the status of a failure of kind k.
func httpStatus(k ErrorKind) int {
	switch k {
	case KindUnknownPeer, KindUnknownService:
		return http.StatusNotFound
	case KindAccessDenied, KindNotP2P:
		return http.StatusForbidden
	case KindTimeout:
		return http.StatusGatewayTimeout
	case KindOverloaded:
		return http.StatusServiceUnavailable
	case KindBadRequest, KindHandshake:
		return http.StatusBadRequest
	case KindAuth:
		return http.StatusProxyAuthRequired
	}
	return http.StatusBadGateway
}

// failureLine is the one-line body of a failure.
func failureLine(k ErrorKind, t target, err error) string {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return "p2pd: " + re.msg
	case t.peer != "":
		return fmt.Sprintf("p2pd: %s: service %q on peer %q", kindText[k], t.service, t.peer)
	}
	return "p2pd: " + kindText[k]
}

// writeFailure writes a plain-text answer of one line. A failed CONNECT
// also closes the connection: the client may have sent bytes meant for the
// tunnel.
func writeFailure(w http.ResponseWriter, r *http.Request, code int, line string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Via", viaHeader)
	if r.Method == http.MethodConnect {
		hd.Set("Connection", "close")
	}
	w.WriteHeader(code)
	io.WriteString(w, line+"\n")
}

// proxyAuthOK checks a Proxy-Authorization: Basic header against cfg.
func proxyAuthOK(h http.Header, cfg *Config) bool {
	scheme, cred, ok := strings.Cut(h.Get("Proxy-Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	return ok && cfg.authOK(user, pass)
}
