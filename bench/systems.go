package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"
)

// System names, in the order the table lists them.
const (
	sysP2PD    = "p2pd"
	sysP2PDTCP = "p2pd-tcp" // p2pd with its peer's transport = "tcp": the TCP carrier
	// sysSOCKS is the p2pd pair's SOCKS5 proxy: new connections only, to put
	// a connection through SOCKS5 beside one through a forward.
	sysSOCKS   = "p2pd-socks5"
	sysTCP     = "tcp"
	sysQuicRaw = "quic-raw"
	sysQtun    = "quic-tunnel"
	sysStunnel = "stunnel"
)

var systemOrder = []string{sysP2PD, sysSOCKS, sysP2PDTCP, sysTCP, sysQuicRaw, sysQtun, sysStunnel}

// system is one way from the harness to the backends.
type system struct {
	name string
	// dial opens a connection to a target (targetEcho or targetBulk).
	dial func(ctx context.Context, target int) (io.ReadWriteCloser, error)
	// connRate: whether a connection is a real new TCP connection (the
	// new-connection figure); false for quic-raw, whose connections are streams.
	connRate bool
	// client and server are the tunnel's processes (nil where none): their
	// CPU and RSS are what the table reports.
	client, server *proc
	// udpAddr is the raw quic-go server's address (quic-raw only).
	udpAddr string
	stop    func()
	// connOnly systems take the new-connection figures only.
	connOnly bool
	// socks is the pair's SOCKS5 system (sysP2PD only).
	socks *system
}

func (s *system) procs() []*proc {
	var out []*proc
	for _, p := range []*proc{s.client, s.server} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// backend is the running backend and its addresses as seen from each side.
type backend struct {
	proc             *proc
	echo, bulk       string // from the server side (tunnel servers connect here)
	echoDir, bulkDir string // from the client side (the direct TCP baseline)
}

func (r *runner) startBackend(t *topo) (*backend, error) {
	ep, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	bp, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	bind := func(p int) string { return net.JoinHostPort(t.backIP, strconv.Itoa(p)) }
	p, err := r.procs.start("backend", r.logPath(t, "backend"), t.prefix(t.serverNS),
		[]string{r.self, "backend", "-echo", bind(ep), "-bulk", bind(bp)}, true)
	if err != nil {
		return nil, err
	}
	if _, err := p.waitReady(10 * time.Second); err != nil {
		return nil, err
	}
	local := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	direct := func(p int) string { return net.JoinHostPort(t.serverIP, strconv.Itoa(p)) }
	return &backend{proc: p, echo: local(ep), bulk: local(bp), echoDir: direct(ep), bulkDir: direct(bp)}, nil
}

func (r *runner) logPath(t *topo, name string) string {
	return filepath.Join(r.work, t.name+"-"+name+".log")
}

// tcpDialer dials the address of each target from the client side.
func tcpDialer(t *topo, addrs [2]string) func(context.Context, int) (io.ReadWriteCloser, error) {
	return func(ctx context.Context, target int) (io.ReadWriteCloser, error) {
		return t.dialTCP(ctx, addrs[target])
	}
}

func newTCPSystem(t *topo, be *backend) *system {
	return &system{name: sysTCP, dial: tcpDialer(t, [2]string{be.echoDir, be.bulkDir}), connRate: true, stop: func() {}}
}

// newQuicRaw starts the raw quic-go server (echo and bulk in process) and
// dials one connection to it from the harness.
func (r *runner) newQuicRaw(t *topo) (*system, error) {
	addr, err := hostPort(t.serverIP, "udp")
	if err != nil {
		return nil, err
	}
	p, err := r.procs.start("quic-raw-server", r.logPath(t, "quic-raw-server"), t.prefix(t.serverNS),
		[]string{r.self, "qtun-server", "-listen", addr, "-inproc"}, true)
	if err != nil {
		return nil, err
	}
	if _, err := p.waitReady(10 * time.Second); err != nil {
		return nil, err
	}
	qc, err := dialQUICFrom(r.ctx, t, addr)
	if err != nil {
		p.stop()
		return nil, err
	}
	return &system{name: sysQuicRaw, dial: quicStreamDialer(qc), server: p, udpAddr: addr, stop: func() { qc.close(); p.stop() }}, nil
}

// quicStreamDialer opens a stream per connection, prefixed with the target.
func quicStreamDialer(qc quicClient) func(context.Context, int) (io.ReadWriteCloser, error) {
	return func(ctx context.Context, target int) (io.ReadWriteCloser, error) {
		st, err := qc.conn.OpenStreamSync(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := st.Write([]byte{byte(target)}); err != nil {
			st.CancelRead(1)
			st.CancelWrite(1)
			return nil, err
		}
		return streamConn{st}, nil
	}
}

// quicClient is one client connection with the UDP socket it owns.
type quicClient struct {
	conn *quic.Conn
	tr   *quic.Transport
}

func (q quicClient) close() {
	q.conn.CloseWithError(0, "")
	q.tr.Close()
	q.tr.Conn.Close()
}

// dialQUICFrom dials addr from the client side of t with the baseline's config.
func dialQUICFrom(ctx context.Context, t *topo, addr string) (quicClient, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return quicClient{}, err
	}
	pc, err := t.listenUDP()
	if err != nil {
		return quicClient{}, fmt.Errorf("bench: quic client socket: %w", err)
	}
	tr := &quic.Transport{Conn: pc}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(dctx, ua, benchClientTLS(), benchQUICConfig())
	if err != nil {
		tr.Close()
		pc.Close()
		return quicClient{}, fmt.Errorf("bench: dial quic %s: %w", addr, err)
	}
	return quicClient{conn: conn, tr: tr}, nil
}

// streamConn closes both directions of a stream on Close.
type streamConn struct{ *quic.Stream }

func (s streamConn) Close() error {
	err := s.Stream.Close()
	s.Stream.CancelRead(0)
	return err
}

// newQtun starts the quic-go tunnel: server beside the backend, client on
// the harness's side.
func (r *runner) newQtun(t *topo, be *backend) (*system, error) {
	udp, err := hostPort(t.serverIP, "udp")
	if err != nil {
		return nil, err
	}
	srv, err := r.procs.start("qtun-server", r.logPath(t, "qtun-server"), t.prefix(t.serverNS),
		[]string{r.self, "qtun-server", "-listen", udp, "-targets", be.echo + "," + be.bulk}, true)
	if err != nil {
		return nil, err
	}
	if _, err := srv.waitReady(10 * time.Second); err != nil {
		return nil, err
	}
	var addrs [2]string
	for i := range addrs {
		if addrs[i], err = hostPort("127.0.0.1", "tcp"); err != nil {
			srv.stop()
			return nil, err
		}
	}
	cl, err := r.procs.start("qtun-client", r.logPath(t, "qtun-client"), t.prefix(t.clientNS),
		[]string{r.self, "qtun-client", "-server", udp, "-listen", addrs[0] + "," + addrs[1]}, true)
	if err != nil {
		srv.stop()
		return nil, err
	}
	if _, err := cl.waitReady(15 * time.Second); err != nil {
		stopProcs([]*proc{cl, srv})
		return nil, err
	}
	return &system{name: sysQtun, dial: tcpDialer(t, addrs), connRate: true, client: cl, server: srv,
		stop: func() { stopProcs([]*proc{cl, srv}) }}, nil
}
