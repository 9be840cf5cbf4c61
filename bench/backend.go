package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// The backends every system reaches. The echo service writes back every
// byte it reads until EOF. The bulk service reads a header and then moves n
// bytes in the direction the header names:
//
//	+--------+----------------------+
//	| op (1) | n (8, big-endian)    |   op 'D': the server sends n bytes, then closes
//	+--------+----------------------+   op 'U': the client sends n bytes, the server answers one byte 'K'
const (
	bulkOpDown   = 'D'
	bulkOpUp     = 'U'
	bulkAck      = 'K'
	bulkHdrLen   = 1 + 8
	ioBufferSize = 256 << 10
	echoBufSize  = 16 << 10
)

var errBulkHeader = errors.New("bench: bulk header: unknown op")

// payload is what the bulk source sends: random bytes, so that nothing on
// the path can compress them.
var payload = func() []byte {
	b := make([]byte, ioBufferSize)
	rand.Read(b)
	return b
}()

// serveEcho writes back everything it reads until EOF.
func serveEcho(rw io.ReadWriter) error {
	buf := make([]byte, echoBufSize)
	for {
		n, err := rw.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// serveBulk answers one bulk request.
func serveBulk(rw io.ReadWriter) error {
	var hdr [bulkHdrLen]byte
	if _, err := io.ReadFull(rw, hdr[:]); err != nil {
		return err
	}
	n := int64(binary.BigEndian.Uint64(hdr[1:]))
	switch hdr[0] {
	case bulkOpDown:
		return writeN(rw, n)
	case bulkOpUp:
		if _, err := io.CopyBuffer(io.Discard, io.LimitReader(rw, n), make([]byte, ioBufferSize)); err != nil {
			return err
		}
		_, err := rw.Write([]byte{bulkAck})
		return err
	}
	return errBulkHeader
}

// writeN writes n bytes of payload.
func writeN(w io.Writer, n int64) error {
	for n > 0 {
		chunk := payload
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		m, err := w.Write(chunk)
		n -= int64(m)
		if err != nil {
			return err
		}
	}
	return nil
}

// runBackend is `bench backend -echo ADDR -bulk ADDR`: it prints "ready"
// once both listen and serves until SIGTERM or SIGINT.
func runBackend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	echoAddr := fs.String("echo", "127.0.0.1:0", "echo service address")
	bulkAddr := fs.String("bulk", "127.0.0.1:0", "bulk service address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var servers []*connServer
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for _, l := range []struct {
		addr string
		h    func(net.Conn) error
	}{
		{*echoAddr, func(c net.Conn) error { return serveEcho(c) }},
		{*bulkAddr, func(c net.Conn) error { return serveBulk(c) }},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("bench backend: listen on %s: %w", l.addr, err)
		}
		servers = append(servers, serveConns(ln, l.h))
	}
	fmt.Fprintln(os.Stdout, "ready")
	<-ctx.Done()
	return nil
}
