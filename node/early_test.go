package node_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// TestEarlyStreamProtocols runs three kinds of target through streams
// opened early (their OK answer is held for the first
// payload): a server that speaks first, one that speaks first only after a
// pause longer than the hold, and a client-speaks-first server that answers
// late. Each must see its bytes in order, with nothing lost or added.
func TestEarlyStreamProtocols(t *testing.T) {
	greet := func(delay time.Duration) func(net.Conn) {
		return func(c net.Conn) {
			time.Sleep(delay)
			c.Write([]byte("220 ready\r\n"))
			io.Copy(c, c) // then echo
		}
	}
	slowEcho := testnet.Serve(t, func(c net.Conn) {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
		c.Write(buf[:n])
		io.Copy(c, c)
	})
	targets := map[string]string{
		"greet":     testnet.Serve(t, greet(0)).String(),
		"greetlate": testnet.Serve(t, greet(50*time.Millisecond)).String(),
		"slowecho":  slowEcho.String(),
	}
	var svcs []node.Service
	for name, addr := range targets {
		svcs = append(svcs, node.Service{Name: name, Target: addr, Allow: []string{"a"}})
	}
	b := startNode(t, node.Config{Name: "b", Services: svcs})
	a := startNode(t, node.Config{Name: "a", Peers: []node.Peer{b.peer("b", true)}})
	b.Apply([]node.Peer{a.peer("a", false)}, svcs)
	ctx := testCtx(t)
	if err := dialEcho(ctx, a, "b", "slowecho", []byte("warm")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // past the settling time: streams now open early

	for _, svc := range []string{"greet", "greetlate"} {
		c, err := a.DialService(ctx, "b", svc)
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		bound(c, failBound)
		got := make([]byte, len("220 ready\r\n"))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "220 ready\r\n" {
			t.Fatalf("%s: greeting %q, %v", svc, got, err)
		}
		if err := echoRoundTrip(c, []byte("HELO p2pd")); err != nil {
			t.Fatalf("%s: echo after the greeting: %v", svc, err)
		}
	}
	c, err := a.DialService(ctx, "b", "slowecho")
	if err != nil {
		t.Fatal(err)
	}
	bound(c, failBound)
	msg := bytes.Repeat([]byte("q"), 40)
	c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("slow echo: %q, %v", got, err)
	}
	c.Close()
}

// TestYoungSessionEarly: on a session just up, streams open early whichever
// peer ID is lower and whichever side dialed (the loser of a simultaneous
// dial is retired gracefully, so an early stream on it is not lost). An
// unknown service shows it: DialService succeeds and the refusal comes with
// the first Read.
func TestYoungSessionEarly(t *testing.T) {
	for _, lowerDials := range []bool{true, false} {
		ka, ks := newKey(t), newKey(t)
		if ka.PeerID().Less(ks.PeerID()) != lowerDials {
			ka, ks = ks, ka
		}
		s := startNode(t, node.Config{Name: "S", Key: ks, Peers: []node.Peer{{Name: "A", ID: ka.PeerID()}}})
		a := startNode(t, node.Config{Name: "A", Key: ka, Peers: []node.Peer{s.peer("S", true)}})
		ctx := testCtx(t)
		if _, _, err := a.Ping(ctx, "S"); err != nil { // the session is up, and young
			t.Fatal(err)
		}
		c, err := a.DialService(ctx, "S", "nope")
		if err != nil {
			t.Fatalf("lower ID dialed %v: DialService returned %v; the stream should open early", lowerDials, err)
		}
		bound(c, failBound)
		var se *transport.StatusError
		if _, err := c.Read(make([]byte, 1)); !errors.As(err, &se) || se.Status != transport.StatusUnknownService {
			t.Fatalf("lower ID dialed %v: first Read: %v, want unknown service", lowerDials, err)
		}
	}
}
