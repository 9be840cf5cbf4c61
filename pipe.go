package p2pd

import (
	"errors"
	"net"
	"time"
)

// pipeConn is one end of an in-process, full-duplex pipe with half-close:
// two net.Pipes, one per direction. CloseWrite closes this end's writing
// pipe, which the other end reads as EOF; Close closes both.
type pipeConn struct {
	rd, wr        net.Conn // read from rd, write to wr
	local, remote net.Addr
}

// newPipe returns the two ends of a pipe.
func newPipe(a, b net.Addr) (*pipeConn, *pipeConn) {
	aToB, bFromA := net.Pipe()
	bToA, aFromB := net.Pipe()
	return &pipeConn{rd: aFromB, wr: aToB, local: a, remote: b},
		&pipeConn{rd: bFromA, wr: bToA, local: b, remote: a}
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.rd.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.wr.Write(p) }
func (c *pipeConn) CloseWrite() error           { return c.wr.Close() }
func (c *pipeConn) Close() error                { return errors.Join(c.wr.Close(), c.rd.Close()) }
func (c *pipeConn) LocalAddr() net.Addr         { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr        { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	return errors.Join(c.rd.SetReadDeadline(t), c.wr.SetWriteDeadline(t))
}
func (c *pipeConn) SetReadDeadline(t time.Time) error  { return c.rd.SetReadDeadline(t) }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { return c.wr.SetWriteDeadline(t) }
