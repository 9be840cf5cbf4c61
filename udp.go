package p2pd

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// DialUDP opens a UDP flow to service (a udp service) on peer and returns
// it as a packet-oriented net.Conn: each Write sends one datagram (up to
// 65,535 bytes) and each Read returns one, cut to the buffer as a UDP
// socket does. It returns once the service has answered; a refusal is the
// error. The flow ends after the service's idle timeout without datagrams;
// Read then returns io.EOF.
func (s *Server) DialUDP(ctx context.Context, peer, service string) (net.Conn, error) {
	n, err := s.running()
	if err != nil {
		return nil, err
	}
	f, err := n.DialFlow(ctx, peer, service)
	if err != nil {
		return nil, err
	}
	return &flowConn{f: f, local: addr(n.ID().String() + "/" + service), remote: addr(peer + "/" + service)}, nil
}

// flowConn is a UDP flow as a net.Conn.
type flowConn struct {
	f             proxy.Flow
	local, remote net.Addr
}

func (c *flowConn) Read(b []byte) (int, error) { return c.f.ReadDatagram(b) }

func (c *flowConn) Write(b []byte) (int, error) {
	if err := c.f.WriteDatagram(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *flowConn) Close() error         { return c.f.Close() }
func (c *flowConn) LocalAddr() net.Addr  { return c.local }
func (c *flowConn) RemoteAddr() net.Addr { return c.remote }

func (c *flowConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.f.(readDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return errNoDeadline
}

// SetWriteDeadline is a no-op: a datagram is sent or dropped at once.
func (c *flowConn) SetWriteDeadline(time.Time) error { return nil }

func (c *flowConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
