package proxy

import (
	"net"
	"testing"
)

// TestListenIPv4Only: a forward, proxy or metrics address of 0.0.0.0 listens
// on IPv4 alone, as written. Go's "tcp" and "udp" networks would open a
// dual-stack [::] socket for it, taking IPv6 clients too.
func TestListenIPv4Only(t *testing.T) {
	ln, err := listenForward("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a := ln.Addr().(*net.TCPAddr); a.IP.To4() == nil {
		t.Errorf("tcp forward on 0.0.0.0 listens on %v; want an IPv4 socket", a)
	}
	pc, err := listenUDPForward("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if a := pc.LocalAddr().(*net.UDPAddr); a.IP.To4() == nil {
		t.Errorf("udp forward on 0.0.0.0 listens on %v; want an IPv4 socket", a)
	}
	for addr, want := range map[string]string{"0.0.0.0:1": "tcp4", "127.0.0.1:1": "tcp4", "[::]:1": "tcp6", "[::ffff:127.0.0.1]:1": "tcp4", "localhost:1": "tcp", "1": "tcp"} {
		if got := ListenNetwork("tcp", addr); got != want {
			t.Errorf("ListenNetwork(tcp, %q) = %q, want %q", addr, got, want)
		}
	}
}
