package p2pd_test

import (
	"bytes"
	"context"
	"errors"
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
