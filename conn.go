package p2pd

import (
	"errors"
	"net"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// streamConn is an overlay stream as a net.Conn. CloseWrite half-closes it;
// Close after an orderly end releases it.
type streamConn struct {
	proxy.Conn
	local, remote net.Addr
}

func newStreamConn(c proxy.Conn, local, remote net.Addr) *streamConn {
	return &streamConn{Conn: c, local: local, remote: remote}
}

// errNoDeadline reports a stream that does not support deadlines.
var errNoDeadline = errors.New("p2pd: this stream has no deadlines")

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

func (c *streamConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.Conn.(readDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return errNoDeadline
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	if d, ok := c.Conn.(writeDeadliner); ok {
		return d.SetWriteDeadline(t)
	}
	return errNoDeadline
}

func (c *streamConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
