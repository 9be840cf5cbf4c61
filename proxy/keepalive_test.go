package proxy

import (
	"net"
	"syscall"
	"testing"
	"time"
)

func TestKeepAliveFor(t *testing.T) {
	for addr, want := range map[string]time.Duration{
		"127.0.0.1:80": -1, "127.3.4.5:1": -1, "[::1]:80": -1, "localhost:5432": -1,
		"[::ffff:127.0.0.1]:80": -1,
		"10.0.0.7:80":           0, "[2001:db8::1]:443": 0, "db.example:5432": 0, "0.0.0.0:80": 0, "bad": 0,
	} {
		if got := KeepAliveFor(addr); got != want {
			t.Errorf("KeepAliveFor(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestForwardLoopbackNoKeepAlive checks that a connection accepted by a
// forward on loopback has SO_KEEPALIVE off, as KeepAliveFor says.
func TestForwardLoopbackNoKeepAlive(t *testing.T) {
	ln, err := listenForward("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, _ := s.(*net.TCPConn).SyscallConn()
	var on int
	var serr error
	rc.Control(func(fd uintptr) { on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
	if serr != nil || on != 0 {
		t.Fatalf("SO_KEEPALIVE = %d (%v) on a loopback forward's connection, want 0", on, serr)
	}
}
