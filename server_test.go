package p2pd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd"
	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failBound bounds every wait; no test asserts on speed.
const failBound = 15 * time.Second

// trio starts "server", trusting "client" and "stranger", and the two
// others trusting the server at its address. Each is closed at cleanup.
func trio(t *testing.T) (server, client, stranger *p2pd.Server) {
	t.Helper()
	dir := t.TempDir()
	sCfg, sID := exampleConfig(filepath.Join(dir, "server"), "server")
	cCfg, cID := exampleConfig(filepath.Join(dir, "client"), "client")
	xCfg, xID := exampleConfig(filepath.Join(dir, "stranger"), "stranger")
	sCfg.Peers = []config.Peer{{Name: "client", ID: cID}, {Name: "stranger", ID: xID}}
	server = &p2pd.Server{Config: sCfg}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	at := []config.Peer{{Name: "server", ID: sID, Addresses: server.Addrs()}}
	cCfg.Peers, xCfg.Peers = at, at
	client, stranger = &p2pd.Server{Config: cCfg}, &p2pd.Server{Config: xCfg}
	t.Cleanup(func() { client.Close() })
	t.Cleanup(func() { stranger.Close() })
	return server, client, stranger
}

// exchange writes out to c and reads everything c sends until EOF, at once.
func exchange(c net.Conn, out []byte) ([]byte, error) {
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, werr = c.Write(out); werr == nil {
			werr = c.(interface{ CloseWrite() error }).CloseWrite()
		}
	}()
	in, rerr := io.ReadAll(c)
	wg.Wait()
	return in, errors.Join(werr, rerr)
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestServerMiBBothWays(t *testing.T) {
	server, client, _ := trio(t)
	up, down := random(t, 1<<20), random(t, 1<<20)
	ln, err := server.Listen("bulk", "client")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		if c.RemoteAddr().String() != client.ID() {
			t.Errorf("accepted conn's RemoteAddr = %q, want the client's ID", c.RemoteAddr())
		}
		in, err := exchange(c, down)
		if err != nil {
			t.Errorf("server side: %v", err)
		}
		got <- in
	}()
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	c, err := client.Dial(ctx, "server", "bulk")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(failBound))
	in, err := exchange(c, up)
	if err != nil {
		t.Fatalf("client side: %v", err)
	}
	if !bytes.Equal(in, down) {
		t.Errorf("client got %d bytes, not the server's 1 MiB", len(in))
	}
	if in := <-got; !bytes.Equal(in, up) {
		t.Errorf("server got %d bytes, not the client's 1 MiB", len(in))
	}
	if c.RemoteAddr().String() != "server/bulk" {
		t.Errorf("RemoteAddr = %q", c.RemoteAddr())
	}
}

func TestServerAllowList(t *testing.T) {
	server, client, stranger := trio(t)
	ln, err := server.Listen("private", "client")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	_, err = stranger.Dial(ctx, "server", "private")
	var se *transport.StatusError
	if !errors.As(err, &se) || se.Status != transport.StatusAccessDenied {
		t.Errorf("stranger's Dial: %v, want access denied", err)
	}
	_, err = client.Dial(ctx, "server", "nothing")
	if !errors.As(err, &se) || se.Status != transport.StatusUnknownService {
		t.Errorf("Dial of an unknown service: %v, want unknown service", err)
	}
	c, err := client.Dial(ctx, "server", "private")
	if err != nil {
		t.Fatalf("allowed client's Dial: %v", err)
	}
	c.Close()
	if _, err := server.Listen("private", "client"); err == nil {
		t.Error("a second Listen on the same service succeeded")
	}
	if _, err := server.Listen("open"); err == nil {
		t.Error("Listen without an allow list succeeded")
	}
}

func TestServerCloseEndsEverything(t *testing.T) {
	before := goleak.IgnoreCurrent()
	server, client, _ := trio(t)
	ln, err := server.Listen("held", "*")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	c, err := client.Dial(ctx, "server", "held")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	defer sc.Close()

	if err := server.Close(); err != nil { // drains, then cuts the open stream
		t.Fatal(err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	sc.SetReadDeadline(time.Now().Add(failBound))
	if _, err := sc.Read(make([]byte, 1)); err == nil {
		t.Error("the accepted conn still reads after Close")
	}
	c.SetReadDeadline(time.Now().Add(failBound))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the dialed conn still reads after the server closed")
	}
	if _, err := server.Dial(ctx, "client", "x"); !errors.Is(err, p2pd.ErrServerClosed) {
		t.Errorf("Dial after Close: %v, want ErrServerClosed", err)
	}
	c.Close()
	sc.Close()
	client.Close()
	goleak.VerifyNone(t, before)
}
