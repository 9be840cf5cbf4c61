package transport

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestTransientSendError classifies send errors: no route, a full queue or
// a firewall is loss; EMSGSIZE (path MTU discovery), EIO (GSO) and a bad
// argument stay errors for quic-go.
func TestTransientSendError(t *testing.T) {
	wrap := func(e syscall.Errno) error { return &net.OpError{Op: "write", Err: os.NewSyscallError("sendmsg", e)} }
	for _, e := range []syscall.Errno{syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN,
		syscall.ENOBUFS, syscall.EPERM, syscall.EADDRNOTAVAIL} {
		if !transientSendError(wrap(e)) {
			t.Errorf("%v: not counted as loss", e)
		}
	}
	for _, e := range []syscall.Errno{syscall.EMSGSIZE, syscall.EIO, syscall.EINVAL, syscall.EBADF} {
		if transientSendError(wrap(e)) {
			t.Errorf("%v: counted as loss; quic-go must see it", e)
		}
	}
}

// TestUDPConnPassesOtherErrors checks the wrapper on a real socket: a good
// send goes out, EMSGSIZE comes back, and a refusal is found only for its
// own address and time.
func TestUDPConnPassesOtherErrors(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &udpConn{UDPConn: uc}
	defer c.Close()
	to := rx.LocalAddr().(*net.UDPAddr)
	if n, _, err := c.WriteMsgUDP([]byte("hello"), nil, to); err != nil || n != 5 {
		t.Fatalf("WriteMsgUDP: %d, %v", n, err)
	}
	rx.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 16)
	if n, _, err := rx.ReadFromUDP(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("received %q, %v", buf[:n], err)
	}
	if _, _, err := c.WriteMsgUDP(make([]byte, 70000), nil, to); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("oversized datagram: %v, want EMSGSIZE passed through", err)
	}
	start := time.Now()
	c.refused(&net.UDPAddr{IP: net.IPv4(10, 9, 9, 9).To16(), Port: 4242}, syscall.ENETUNREACH)
	if err := c.refusedSince(&net.UDPAddr{IP: net.IPv4(10, 9, 9, 9), Port: 4242}, start); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("refusedSince for the refused address (other spelling): %v", err)
	}
	if err := c.refusedSince(to, start); err != nil {
		t.Fatalf("refusal reported for another address: %v", err)
	}
	if err := c.refusedSince(&net.UDPAddr{IP: net.IPv4(10, 9, 9, 9), Port: 4242}, time.Now().Add(time.Second)); err != nil {
		t.Fatalf("refusal from before the dial reported: %v", err)
	}
}
