package node_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pd/p2pd/node"
)

// TestWhois: while a peer's stream is open, the address the backend sees as
// its client names the peer and the service; when the stream ends it
// names nothing.
func TestWhois(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clients := make(chan net.Conn, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		clients <- c
		c.SetDeadline(time.Now().Add(failBound))
		io.Copy(c, c)
		c.Close()
	}()
	t.Cleanup(func() { ln.Close(); <-done })

	a := newNode(t, node.Config{Name: "A"})
	srv := startNode(t, node.Config{Name: "S", Peers: []node.Peer{a.peer("web1", false)},
		Services: []node.Service{{Name: "held", Target: ln.Addr().String(), Allow: []string{"web1"}}}})
	if err := a.Apply([]node.Peer{srv.peer("S", true)}, nil); err != nil {
		t.Fatal(err)
	}
	a.run()
	ctx := testCtx(t)
	st, err := a.DialService(ctx, "S", "held")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Abort()
	bound(st, failBound)
	// One byte each way: the stream is answered and the backend has it.
	if _, err := st.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(st, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	var backendConn net.Conn
	select {
	case backendConn = <-clients:
	case <-time.After(failBound):
		t.Fatal("the backend got no connection")
	}
	client := netip.MustParseAddrPort(backendConn.RemoteAddr().String())

	for _, q := range []netip.AddrPort{client, netip.AddrPortFrom(netip.AddrFrom16(client.Addr().As16()), client.Port())} {
		got := srv.Whois(q)
		if len(got) != 1 {
			t.Fatalf("Whois(%v) = %+v, want one connection", q, got)
		}
		c := got[0]
		if c.Peer != "web1" || c.PeerID != a.ID() || c.Service != "held" || c.Target != ln.Addr().String() || c.Local != client || c.Since.IsZero() {
			t.Errorf("Whois(%v) = %+v; want peer web1 (%s), service held, target %s, local %v", q, c, a.ID(), ln.Addr(), client)
		}
	}
	other := netip.AddrPortFrom(client.Addr(), client.Port()+1)
	if got := srv.Whois(other); len(got) != 0 {
		t.Errorf("Whois(%v), an address no stream owns, = %+v", other, got)
	}
	if got := a.Whois(client); len(got) != 0 {
		t.Errorf("the dialing node claims the backend's client: %+v", got)
	}

	// The stream ends: the entry goes.
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, st); err != nil {
		t.Fatal(err)
	}
	st.Close()
	waitFor(t, "the ended stream to leave Whois", func() bool { return len(srv.Whois(client)) == 0 })
}
