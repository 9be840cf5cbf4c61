package attack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN is the overlay's TLS application protocol (transport.ALPN).
const ALPN = "p2pd/1"

// InitialSize is the UDP payload of every Initial the tools send: p2pd's
// own initial packet size, which fits any IPv4 path and IPv6's minimum MTU.
const InitialSize = 1232

// QUIC v1 long header (RFC 9000 §17.2): the first byte's form and fixed
// bits, the packet type in bits 4–5 (Initial = 0), then the version.
const (
	longHeaderForm  = 0x80
	fixedBit        = 0x40
	typeMask        = 0x30
	versionLen      = 4
	quicV1          = 0x00000001
	maxConnIDLen    = 20
	minInitialDCID  = 8 // a client's first DCID is at least 8 bytes (RFC 9000 §7.2)
	initialDCIDOffs = 1 + versionLen
)

// clientTLS is the TLS configuration of every attacking client: no
// certificate verification (p2pd's certificates are throwaway), TLS 1.3 and
// ALPN p2pd/1, X25519 only so that the ClientHello fits one Initial packet
// (a hybrid ML-KEM key share would spread it over two, and the server
// would do no work until the second).
func clientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		InsecureSkipVerify:     true,
		NextProtos:             []string{ALPN},
		ServerName:             "p2pd",
		CurvePreferences:       []tls.CurveID{tls.X25519},
		SessionTicketsDisabled: true,
	}
}

// InitialDCID returns the destination connection ID of a QUIC v1 Initial
// packet, and false if b is not one.
func InitialDCID(b []byte) ([]byte, bool) {
	if len(b) < initialDCIDOffs+1 || b[0]&(longHeaderForm|fixedBit) != longHeaderForm|fixedBit || b[0]&typeMask != 0 {
		return nil, false
	}
	if v := uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]); v != quicV1 {
		return nil, false
	}
	n := int(b[initialDCIDOffs])
	if n > maxConnIDLen || len(b) < initialDCIDOffs+1+n {
		return nil, false
	}
	return b[initialDCIDOffs+1 : initialDCIDOffs+1+n], true
}

// MakeInitials returns n distinct client Initial datagrams of
// [InitialSize] bytes, each the first packet of its own QUIC v1 dial with
// ALPN p2pd/1: a fresh destination connection ID and ClientHello each. It
// dials over a packet conn that only records what is written, so nothing
// reaches the network. A few thousand take a second or two of CPU.
func MakeInitials(ctx context.Context, n int) ([][]byte, error) {
	pc := newCaptureConn()
	tr := &quic.Transport{Conn: pc}
	defer func() {
		pc.Close() // first: Transport.Close waits for its reader, and only a closed conn ends it
		tr.Close()
	}()
	conf := &quic.Config{InitialPacketSize: InitialSize, HandshakeIdleTimeout: time.Second}
	target := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4242} // never reached
	seen := make(map[string]bool, n)
	out := make([][]byte, 0, n)
	for len(out) < n {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		pkt, err := captureOne(ctx, tr, pc, target, conf)
		if err != nil {
			return out, err
		}
		dcid, ok := InitialDCID(pkt)
		if !ok || len(pkt) != InitialSize || seen[string(dcid)] {
			return out, fmt.Errorf("attack: dial %d wrote a %d-byte datagram that is not a fresh Initial", len(out), len(pkt))
		}
		seen[string(dcid)] = true
		out = append(out, pkt)
	}
	return out, nil
}

// captureOne runs one dial until its first datagram is written, then
// cancels it and waits for it to end.
func captureOne(ctx context.Context, tr *quic.Transport, pc *captureConn, target net.Addr, conf *quic.Config) ([]byte, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := pc.arm()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := tr.Dial(dctx, target, clientTLS(), conf); err == nil {
			c.CloseWithError(0, "") // cannot happen: nobody answers
		}
	}()
	var pkt []byte
	var err error
	select {
	case pkt = <-got:
	case <-time.After(5 * time.Second):
		err = errors.New("attack: a dial wrote no Initial in 5 s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	<-done
	return pkt, err
}

// captureConn is a net.PacketConn that hands the first datagram written
// after each arm to the armed channel and drops everything else; reads
// block until Close.
type captureConn struct {
	mu     sync.Mutex // guards armed
	armed  chan []byte
	closed chan struct{}
	once   sync.Once
}

func newCaptureConn() *captureConn { return &captureConn{closed: make(chan struct{})} }

func (c *captureConn) arm() <-chan []byte {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.armed = ch
	c.mu.Unlock()
	return ch
}

func (c *captureConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.mu.Lock()
	ch := c.armed
	c.armed = nil
	c.mu.Unlock()
	if ch != nil {
		ch <- bytes.Clone(b)
	}
	return len(b), nil
}

func (c *captureConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.closed
	return 0, nil, net.ErrClosed
}

func (c *captureConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *captureConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 4242}
}
func (c *captureConn) SetReadBuffer(int) error          { return nil }
func (c *captureConn) SetWriteBuffer(int) error         { return nil }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// garbageInitial fills b (at least 64 bytes) with an Initial's long header
// (QUIC v1, a random 8–20-byte DCID, an empty SCID and token, a length
// covering the rest) and random bytes where the protected payload goes: the
// server derives the Initial keys from the DCID and then fails to decrypt.
func garbageInitial(b []byte) {
	rand.Read(b)
	b[0] = longHeaderForm | fixedBit | b[0]&0x0f // Initial, random reserved and PN-length bits
	b[1], b[2], b[3], b[4] = 0, 0, 0, quicV1
	dcid := minInitialDCID + int(b[5])%(maxConnIDLen-minInitialDCID+1)
	b[5] = byte(dcid)
	i := 6 + dcid
	b[i] = 0   // SCID length
	b[i+1] = 0 // token length
	rest := len(b) - (i + 4)
	b[i+2], b[i+3] = 0x40|byte(rest>>8), byte(rest) // 2-byte varint length
}
