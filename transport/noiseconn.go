package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pd/p2pd/handshake"
)

// The TCP carrier's record layer. After the Noise IK handshake (tcp.go)
// every byte either way travels in Noise transport messages of suite
// Noise_IK_25519_AESGCM_SHA256, each framed by its length:
//
//	+----------------+---------------------------------------------+
//	| length (2, BE) | ciphertext (length): plaintext + 16-byte tag |
//	+----------------+---------------------------------------------+
//
// A record carries 1 to handshake.MaxPlaintext (65,519) bytes of plaintext;
// an empty or oversized record, or one that fails authentication, ends the
// connection. The nonce is Noise's implicit counter, one per record and
// direction.
const (
	recordLenSize = 2
	// noiseReadBuf is how much ciphertext one read from the socket may
	// bring in; whole records are decrypted in place, and only a partial
	// record at the end is ever moved.
	noiseReadBuf = 256 << 10
	// noiseWriteChunk bounds the plaintext one Write seals before it hands
	// the records to the socket, all of them in one write.
	noiseWriteChunk = 256 << 10
)

// errRecord reports a malformed record.
var errRecord = errors.New("transport: malformed noise record")

// noiseConn is a net.Conn whose bytes are Noise transport messages on an
// underlying connection. Reads and writes may run concurrently with each
// other; concurrent writes are serialised.
type noiseConn struct {
	net.Conn

	rmu   sync.Mutex // guards the read side
	recv  *handshake.Cipher
	buf   []byte // ciphertext read and not yet decrypted: buf[start:end]
	start int
	end   int
	plain []byte // decrypted, not yet returned (aliases buf)
	rerr  error  // sticky: the connection is dead for reading

	wmu  sync.Mutex // guards the write side
	send *handshake.Cipher
	out  []byte
	werr error

	// plaintext bytes written and read, for the session's counters
	sent, received atomic.Uint64

	closeOnce sync.Once
	closing   atomic.Bool
	linger    *time.Timer // closes the socket if the peer does not
}

// closeLinger bounds how long a closed noiseConn waits for the peer's side
// of the close.
const closeLinger = time.Second

// Close half-closes the connection and leaves the socket open until the
// peer closes its side (the reader sees EOF) or closeLinger passes. A full
// close at once would make the peer's next write fail (EPIPE, a reset),
// and it could lose what this side sent last, such as yamux's GoAway with
// the close code, which the peer may not have read yet.
func (c *noiseConn) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		// A write under way (to a peer that stopped reading, say) is
		// ended by a full close instead: nothing waits for it.
		if c.wmu.TryLock() {
			err := c.halfClose()
			c.werr = net.ErrClosed
			c.wmu.Unlock()
			if err == nil {
				c.linger = time.AfterFunc(closeLinger, func() { c.Conn.Close() })
				return
			}
		}
		c.Conn.Close()
	})
	return nil
}

func newNoiseConn(c net.Conn, send, recv *handshake.Cipher) *noiseConn {
	return &noiseConn{Conn: c, send: send, recv: recv, buf: make([]byte, noiseReadBuf)}
}

// Read returns decrypted bytes of the next records.
func (c *noiseConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.nextRecord(); err != nil {
			c.rerr = err
			if c.closing.Load() {
				c.Conn.Close() // the peer closed too: the socket can go
			}
			return 0, err
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	c.received.Add(uint64(n))
	return n, nil
}

// nextRecord decrypts the next record into c.plain, reading from the
// socket as little as it must and as much as fits.
func (c *noiseConn) nextRecord() error {
	if err := c.fill(recordLenSize); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(c.buf[c.start:]))
	if n <= handshake.TagSize {
		return fmt.Errorf("%w: record of %d bytes", errRecord, n)
	}
	if err := c.fill(recordLenSize + n); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	ct := c.buf[c.start+recordLenSize : c.start+recordLenSize+n]
	c.start += recordLenSize + n
	pt, err := c.recv.Open(ct[:0], ct)
	if err != nil {
		return err
	}
	c.plain = pt
	return nil
}

// readConfirm reads the initiator's first record, which must be exactly
// tcpConfirm (tcp.go).
func (c *noiseConn) readConfirm() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.nextRecord(); err != nil {
		return err
	}
	if len(c.plain) != 1 || c.plain[0] != tcpConfirm {
		return fmt.Errorf("%w: first record is not the confirmation", errRecord)
	}
	c.plain = nil
	return nil
}

// fill makes at least need bytes available at c.buf[c.start:]. A clean EOF
// between records is io.EOF.
func (c *noiseConn) fill(need int) error {
	if c.end-c.start >= need {
		return nil
	}
	if c.start == c.end {
		c.start, c.end = 0, 0
	}
	if c.start > 0 && len(c.buf)-c.start < need {
		// Move the partial record to the front; the buffer holds the
		// largest record, so it then fits.
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	for c.end-c.start < need {
		n, err := c.Conn.Read(c.buf[c.end:])
		c.end += n
		if err != nil {
			if errors.Is(err, io.EOF) && c.end-c.start > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// Write seals p into records and writes them; up to noiseWriteChunk of
// plaintext goes to the socket in one write.
func (c *noiseConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), noiseWriteChunk)]
		out := c.out[:0]
		for rest := chunk; len(rest) > 0; {
			m := rest[:min(len(rest), handshake.MaxPlaintext)]
			rest = rest[len(m):]
			out = binary.BigEndian.AppendUint16(out, uint16(len(m)+handshake.TagSize))
			var err error
			if out, err = c.send.Seal(out, m); err != nil {
				c.werr = err
				return written, err
			}
		}
		c.out = out
		if _, err := c.Conn.Write(out); err != nil {
			c.werr = err
			return written, err
		}
		written += len(chunk)
		c.sent.Add(uint64(len(chunk)))
		p = p[len(chunk):]
	}
	return written, nil
}

// CloseWrite half-closes the underlying TCP connection when it can.
func (c *noiseConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.halfClose()
}

// halfClose sends the FIN. The caller holds wmu.
func (c *noiseConn) halfClose() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
