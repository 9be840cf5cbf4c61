package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHandshakeTimeout bounds a proxy client's handshake: the SOCKS5
// greeting, authentication and request, or an HTTP request head. A client
// that has not finished by then is disconnected (slowloris).
const DefaultHandshakeTimeout = 10 * time.Second

// DefaultResponseTimeout bounds how long the HTTP proxy waits for a
// service's response head to a plain request, from the request's last
// progress (a write of it to the stream, an interim response): a service
// that says nothing for that long gets its stream aborted, and the client
// 504. It is nginx's default proxy_read_timeout; a service that answers
// slower is a long poll that should send interim responses or use CONNECT.
const DefaultResponseTimeout = 60 * time.Second

// Listener kinds, as ListenerStats and the logs name them.
const (
	KindSOCKS5 = "socks5"
	KindHTTP   = "http"
)

// Config is the local proxies' configuration. Its zero value runs none.
type Config struct {
	SOCKS5 string // "host:port" of the SOCKS5 server; "" for none
	HTTP   string // "host:port" of the HTTP proxy; "" for none
	// Username and Password, when Username is set, are the credentials
	// both proxies require: SOCKS5 username/password authentication (RFC
	// 1929), HTTP Proxy-Authorization: Basic.
	Username, Password string
	// MaxConnections caps each listener's concurrent client connections;
	// 0 means DefaultMaxConnections.
	MaxConnections int
	// HandshakeTimeout, DialTimeout and ResponseTimeout: 0 means
	// DefaultHandshakeTimeout, DefaultDialTimeout and DefaultResponseTimeout.
	HandshakeTimeout time.Duration
	DialTimeout      time.Duration
	ResponseTimeout  time.Duration
}

func (c *Config) maxConnections() int { return orDefault(c.MaxConnections, DefaultMaxConnections) }
func (c *Config) handshakeTimeout() time.Duration {
	return orDefault(c.HandshakeTimeout, DefaultHandshakeTimeout)
}
func (c *Config) dialTimeout() time.Duration { return orDefault(c.DialTimeout, DefaultDialTimeout) }
func (c *Config) responseTimeout() time.Duration {
	return orDefault(c.ResponseTimeout, DefaultResponseTimeout)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// authOK reports whether user and pass are the configured credentials, in
// time that does not depend on where they differ.
func (c *Config) authOK(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(c.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(c.Password))
	return u&p == 1
}

// ListenerStats is one proxy listener and its counters.
type ListenerStats struct {
	Kind           string // KindSOCKS5 or KindHTTP
	Listen         string // as configured
	Auth           bool   // clients must authenticate
	MaxConnections int    // the cap in force
	Active         int
	Total          uint64 // client connections handled
	Refused        uint64 // connections reset because the listener was at its cap and none was idle
	Evicted        uint64 // idle connections closed to make room at the cap
	AcceptErrors   uint64 // failed accepts, such as EMFILE
	// Errors counts failed connections (SOCKS5) and requests (HTTP) by
	// ErrorKind.String(); kinds that never happened are absent.
	Errors map[string]uint64
}

// Server runs the SOCKS5 and HTTP proxies. Apply sets the listeners; Close
// stops them. A Server's methods are safe for concurrent use.
type Server struct {
	ov       Overlay
	classify Classifier
	log      *slog.Logger
	listen   func(addr string) (net.Listener, error)
	cfg      atomic.Pointer[Config] // what new connections use; Apply swaps it

	mu     sync.Mutex // guards socks, http and closed
	socks  *proxyListener
	http   *proxyListener
	closed bool
	assocs associations // live SOCKS5 UDP associations (socks5udp.go)
	// answered holds the services that answered OK lately (socks5fast.go).
	answered answered

	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	wg     sync.WaitGroup // serve loops, connection handlers, retired HTTP servers
}

// proxyListener is one running listener.
type proxyListener struct {
	kind string
	addr string
	g    *guardedListener
	errs [numKinds]atomic.Uint64
	srv  *http.Server // KindHTTP only
	// conns maps an HTTP client connection to its state (httpproxy.go).
	conns sync.Map
}

func (l *proxyListener) count(k ErrorKind) { l.errs[k].Add(1) }

// NewServer returns a Server with no listeners. classify tells the kinds of
// ov's errors; nil reports them all as KindOther.
func NewServer(ov Overlay, classify Classifier, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ov: ov, classify: classify, log: log, listen: listenForward}
	s.cfg.Store(&Config{})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Apply makes cfg the running configuration. A listener whose address
// stays keeps its socket and its connections; new listeners are opened
// before any is closed, and if one fails nothing changes. Credentials and
// the cap apply to connections accepted from then on.
func (s *Server) Apply(cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("proxy: server closed")
	}
	if cfg.SOCKS5 != "" && cfg.SOCKS5 == cfg.HTTP && !strings.HasSuffix(cfg.SOCKS5, ":0") {
		return fmt.Errorf("proxy: socks5 and http both listen on %q", cfg.SOCKS5)
	}
	limit := cfg.maxConnections()
	var socks, httpl *proxyListener
	var err error
	if cfg.SOCKS5 != "" && (s.socks == nil || s.socks.addr != cfg.SOCKS5) {
		if socks, err = s.open(KindSOCKS5, cfg.SOCKS5, limit); err != nil {
			return err
		}
	}
	if cfg.HTTP != "" && (s.http == nil || s.http.addr != cfg.HTTP) {
		if httpl, err = s.open(KindHTTP, cfg.HTTP, limit); err != nil {
			if socks != nil {
				socks.g.Close()
			}
			return err
		}
	}
	c := cfg
	s.cfg.Store(&c)
	s.socks = s.swap(s.socks, socks, cfg.SOCKS5 == "", limit)
	s.http = s.swap(s.http, httpl, cfg.HTTP == "", limit)
	return nil
}

// open binds a listener of kind at addr.
func (s *Server) open(kind, addr string, limit int) (*proxyListener, error) {
	ln, err := s.listen(addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: [proxy] %s %q: %w", kind, addr, err)
	}
	return &proxyListener{kind: kind, addr: addr, g: newGuardedListener(ln, kind, limit, s.log)}, nil
}

// swap replaces the running listener old by opened (nil: keep old, unless
// off). It starts opened and retires old. Called with s.mu held.
func (s *Server) swap(old, opened *proxyListener, off bool, limit int) *proxyListener {
	if opened == nil && !off {
		if old != nil {
			old.g.max.Store(int64(limit))
		}
		return old
	}
	if old != nil {
		s.retire(old)
	}
	if opened != nil {
		s.start(opened)
	}
	return opened
}

func (s *Server) start(l *proxyListener) {
	s.log.Info(l.kind+" proxy listening", "listen", l.g.Addr().String())
	s.wg.Add(1)
	if l.kind == KindSOCKS5 {
		go s.serveSOCKS(l)
		return
	}
	l.srv = s.newHTTPServer(l)
	go func() {
		defer s.wg.Done()
		l.srv.Serve(l.g)
	}()
}

// retire stops accepting on l. Its SOCKS5 connections run to their end;
// its HTTP server finishes the requests in flight and closes idle
// connections, or is closed when the Server is.
func (s *Server) retire(l *proxyListener) {
	l.g.Close()
	if l.srv == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if l.srv.Shutdown(s.ctx) != nil {
			l.srv.Close()
		}
	}()
}

// enter registers a connection handler that net/http started, unless the
// Server is closed; the handler calls s.wg.Done when it ends.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Stats returns the running listeners with their counters, SOCKS5 first.
func (s *Server) Stats() []ListenerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg.Load()
	var out []ListenerStats
	for _, l := range []*proxyListener{s.socks, s.http} {
		if l == nil {
			continue
		}
		st := ListenerStats{Kind: l.kind, Listen: l.addr, Auth: cfg.Username != "",
			MaxConnections: int(l.g.max.Load()), Active: int(l.g.active.Load()), Total: l.g.total.Load(),
			Refused: l.g.refused.Load(), Evicted: l.g.evicted.Load(), AcceptErrors: l.g.acceptErrors.Load(), Errors: map[string]uint64{}}
		for k := range numKinds {
			if n := l.errs[k].Load(); n > 0 {
				st.Errors[k.String()] = n
			}
		}
		out = append(out, st)
	}
	return out
}

// Addr returns the bound address of the listener of kind, for tests that
// ask for port 0; nil when there is none.
func (s *Server) Addr(kind string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.socks
	if kind == KindHTTP {
		l = s.http
	}
	if l == nil {
		return nil
	}
	return l.g.Addr()
}

// Close stops accepting. Connections in flight get until ctx ends to finish
// on their own; then they are aborted. Close waits for every goroutine.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var srvs []*http.Server
	for _, l := range []*proxyListener{s.socks, s.http} {
		if l == nil {
			continue
		}
		l.g.Close()
		if l.srv != nil {
			srvs = append(srvs, l.srv)
		}
	}
	s.socks, s.http = nil, nil
	s.mu.Unlock()
	for _, srv := range srvs {
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
	}
	s.cancel()
	return nil
}

// logFailure logs a failed connection or request once, with the peer,
// service and reason; at INFO or DEBUG as infoKind says.
func (s *Server) logFailure(kind string, t target, k ErrorKind, remote string, err error) {
	lvl := slog.LevelDebug
	if infoKind(k) {
		lvl = slog.LevelInfo
	}
	s.log.Log(context.Background(), lvl, kind+" proxy: connection failed",
		"peer", t.peer, "service", t.service, "reason", k.String(), "remote", remote, "err", err)
}
