package testnet

import (
	"bytes"
	"crypto/rand"
	"net"
	"testing"
	"time"
)

// NewUDPEcho starts a UDP echo server on loopback, closed at cleanup, and
// returns its address: each datagram goes back to its sender unchanged.
func NewUDPEcho(tb testing.TB) *net.UDPAddr {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr)
}

// Datagrammer is a UDP flow as the overlay's packages have it.
type Datagrammer interface {
	WriteDatagram([]byte) error
	ReadDatagram([]byte) (int, error)
}

// EchoDatagrams sends one random datagram of each size on f, in turn, and
// checks that each comes back whole within 5 s.
func EchoDatagrams(tb testing.TB, f Datagrammer, sizes []int) {
	tb.Helper()
	buf := make([]byte, 1<<17)
	for i, size := range sizes {
		d := make([]byte, size)
		rand.Read(d)
		if err := f.WriteDatagram(d); err != nil {
			tb.Fatalf("datagram %d (%d bytes): %v", i, size, err)
		}
		got := make(chan int, 1)
		go func() {
			n, err := f.ReadDatagram(buf)
			if err != nil {
				n = -1
			}
			got <- n
		}()
		select {
		case n := <-got:
			if n != size || !bytes.Equal(buf[:n], d) {
				tb.Fatalf("datagram %d (%d bytes) came back as %d bytes, not the same", i, size, n)
			}
		case <-time.After(5 * time.Second):
			tb.Fatalf("datagram %d (%d bytes) did not come back", i, size)
		}
	}
}
