package p2pd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pd/p2pd"
	"github.com/p2pd/p2pd/config"
)

// TestServerDialUDP: DialUDP reaches a udp service of the server's config;
// each Write is one datagram and each Read one answer, byte-exact, small
// and large; a read deadline ends a Read that gets nothing.
func TestServerDialUDP(t *testing.T) {
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) != "silence" {
				echo.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	dir := t.TempDir()
	sCfg, sID := exampleConfig(filepath.Join(dir, "server"), "server")
	cCfg, cID := exampleConfig(filepath.Join(dir, "client"), "client")
	sCfg.Peers = []config.Peer{{Name: "client", ID: cID}}
	sCfg.Services = []config.Service{{Name: "uecho", Target: echo.LocalAddr().String(), Protocol: config.ProtocolUDP, Allow: []string{"client"}}}
	server := &p2pd.Server{Config: sCfg}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cCfg.Peers = []config.Peer{{Name: "server", ID: sID, Addresses: server.Addrs()}}
	client := &p2pd.Server{Config: cCfg}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	c, err := client.DialUDP(ctx, "server", "uecho")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 70000)
	for _, size := range []int{1, 500, 1500, 9000, 65000} {
		d := random(t, size)
		if n, err := c.Write(d); err != nil || n != size {
			t.Fatalf("Write of %d bytes: %d, %v", size, n, err)
		}
		c.SetReadDeadline(time.Now().Add(failBound))
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], d) {
			t.Fatalf("%d-byte datagram: read %d bytes, %v", size, n, err)
		}
	}
	c.Write([]byte("silence"))
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v", err)
	}
	if c.RemoteAddr().String() != "server/uecho" {
		t.Errorf("RemoteAddr = %q", c.RemoteAddr())
	}
	if _, err := client.DialUDP(ctx, "server", "nothing"); err == nil {
		t.Error("DialUDP of an unknown service succeeded")
	}
}

// TestServerListenPacket: an in-process udp service gets each peer's
// datagrams from ReadFrom with the flow's address (the peer's ID, one
// number per flow) and answers each flow with WriteTo, byte-exact; the
// allow list holds; a read deadline ends a ReadFrom that gets nothing; a
// WriteTo to a flow that ended fails; Close ends the flows (the client's
// Read fails at once) and refuses new ones.
func TestServerListenPacket(t *testing.T) {
	server, client, stranger := trio(t)
	pc, err := server.ListenPacket("uecho", "client")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	if _, err := stranger.DialUDP(ctx, "server", "uecho"); err == nil {
		t.Error("a peer outside the allow list opened a flow")
	}
	if _, err := server.Listen("uecho", "*"); err == nil {
		t.Error("Listen took the name of a ListenPacket service")
	}

	// Two flows of the same peer, each answered on its own.
	c1, err := client.DialUDP(ctx, "server", "uecho")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := client.DialUDP(ctx, "server", "uecho")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	pc.SetReadDeadline(time.Now().Add(failBound))
	buf := make([]byte, 70000)
	var from [3]net.Addr
	for i, c := range []net.Conn{c1, c2, c1} {
		d := random(t, []int{1, 1500, 65000}[i])
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
		n, a, err := pc.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], d) {
			t.Fatalf("datagram %d: ReadFrom %d bytes, %v", i, n, err)
		}
		fa, ok := a.(p2pd.FlowAddr)
		if !ok || fa.Peer != client.ID() {
			t.Fatalf("datagram %d from %#v, want a FlowAddr of %s", i, a, client.ID())
		}
		from[i] = a
		answer := append([]byte(fmt.Sprintf("to %v:", a)), d[:min(len(d), 100)]...)
		if _, err := pc.WriteTo(answer, a); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(failBound))
		n, err = c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], answer) {
			t.Fatalf("answer %d: read %q, %v; want %q", i, buf[:min(n, 40)], err, answer[:40])
		}
	}
	a1, a2 := from[0], from[1]
	if a1 != from[2] || a1.String() == a2.String() {
		t.Errorf("flow addresses %v: want the first and last the same, the second apart", from)
	}

	pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, _, err := pc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom past the deadline: %v", err)
	}
	// A deadline set while ReadFrom waits ends it too.
	pc.SetReadDeadline(time.Time{})
	waiting := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 10))
		waiting <- err
	}()
	time.Sleep(50 * time.Millisecond)
	pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	select {
	case err := <-waiting:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("waiting ReadFrom after a new deadline: %v", err)
		}
	case <-time.After(failBound):
		t.Fatal("a deadline set during ReadFrom did not end it")
	}
	pc.SetReadDeadline(time.Time{})

	// The client ends flow 2: the server's node sees the end, and WriteTo
	// then fails.
	c2.Close()
	deadline := time.Now().Add(failBound)
	for {
		_, err := pc.WriteTo([]byte("late"), a2)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("WriteTo to a closed flow still succeeds")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := pc.WriteTo([]byte("x"), a1); err != nil {
		t.Errorf("WriteTo the live flow: %v", err)
	}

	// Close ends the live flow and refuses new ones.
	pc.Close()
	if _, _, err := pc.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom after Close: %v", err)
	}
	c1.SetReadDeadline(time.Now().Add(failBound))
	for {
		if _, err := c1.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the flow outlived Close: %v", err)
			}
			break
		}
	}
	if _, err := client.DialUDP(ctx, "server", "uecho"); err == nil {
		t.Error("DialUDP after Close succeeded")
	}
}

// TestServerListenPacketQueueBound: datagrams a program does not read are
// queued up to 1 MiB; what peers send beyond that is dropped, as by a full
// UDP socket buffer, instead of held.
func TestServerListenPacketQueueBound(t *testing.T) {
	server, client, _ := trio(t)
	pc, err := server.ListenPacket("sink", "client")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	c, err := client.DialUDP(ctx, "server", "sink")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size, sent = 60000, 40 // 2.4 MB
	for range sent {
		if _, err := c.Write(random(t, size)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // no loss on the way
	}
	time.Sleep(500 * time.Millisecond)
	got := 0
	buf := make([]byte, 65535)
	for {
		pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		if n != size {
			t.Fatalf("a datagram of %d bytes, want %d", n, size)
		}
		got++
	}
	if got == 0 || got > (1<<20)/size {
		t.Errorf("read %d of %d datagrams of %d bytes; want 1 to %d (1 MiB queued)", got, sent, size, (1<<20)/size)
	}
}
