package main

import (
	"io"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
)

// spliceBufSize is the quic-go tunnel's copy buffer: io.Copy's size, pooled.
const spliceBufSize = 32 << 10

var spliceBufs = sync.Pool{New: func() any { b := make([]byte, spliceBufSize); return &b }}

// spliceStream copies between a QUIC stream and a TCP connection until both
// directions end. EOF becomes a half-close on the other side; an error
// aborts both.
func spliceStream(s *quic.Stream, c *net.TCPConn) {
	abort := func() {
		s.CancelRead(1)
		s.CancelWrite(1)
		c.SetLinger(0)
		c.Close()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if copyThrough(c, s) != nil {
			abort()
			return
		}
		c.CloseWrite()
	}()
	if copyThrough(s, c) != nil {
		abort()
	} else {
		s.Close()
	}
	wg.Wait()
	c.Close()
}

// copyThrough copies src to dst through a pooled buffer until EOF. It hides
// ReaderFrom/WriterTo so that the pooled buffer is always the one used.
func copyThrough(dst io.Writer, src io.Reader) error {
	bp := spliceBufs.Get().(*[]byte)
	defer spliceBufs.Put(bp)
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
	return err
}
