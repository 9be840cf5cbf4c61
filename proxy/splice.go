package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Conn is one end of a splice: a byte stream that can be half-closed and aborted.
type Conn interface {
	io.Reader
	io.Writer
	// CloseWrite sends EOF to the other side after the data written so far.
	CloseWrite() error
	// Close releases the connection after an orderly end.
	Close() error
	// Abort ends the connection at once so the other side sees a reset.
	Abort()
}

// Splice copies a→b and b→a until both directions have ended. EOF on one
// side becomes a half-close of the other; an error in either direction
// aborts both ends. It returns the bytes copied each way and the first error.
func Splice(a, b Conn) (aToB, bToA int64, err error) {
	var wg sync.WaitGroup
	var errAB error
	wg.Add(1)
	go func() {
		defer wg.Done()
		aToB, errAB = pipe(b, a)
	}()
	var errBA error
	bToA, errBA = pipe(a, b)
	wg.Wait()
	if err = errors.Join(errAB, errBA); err != nil {
		return aToB, bToA, err
	}
	a.Close()
	b.Close()
	return aToB, bToA, nil
}

// pipe copies src to dst through a pooled buffer, then half-closes dst. On
// an error it aborts both so that the other direction ends too.
func pipe(dst, src Conn) (int64, error) {
	buf, put := getBuffer()
	defer put()
	var n int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				src.Abort()
				dst.Abort()
				return n, werr
			}
		}
		if rerr == io.EOF {
			if err := dst.CloseWrite(); err != nil {
				src.Abort()
				dst.Abort()
				return n, err
			}
			return n, nil
		}
		if rerr != nil {
			src.Abort()
			dst.Abort()
			return n, rerr
		}
	}
}

// halfCloser is a net.Conn that can close its write side (TCP, Unix).
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// NetConn adapts a TCP or Unix connection to Conn. Abort on TCP sends a reset.
func NetConn(c net.Conn) Conn {
	if hc, ok := c.(halfCloser); ok {
		return netConn{hc}
	}
	return nil
}

type netConn struct{ halfCloser }

func (c netConn) Abort() {
	if tc, ok := c.halfCloser.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.halfCloser.Close()
}
