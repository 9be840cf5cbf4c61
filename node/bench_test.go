package node_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
)

// benchPair runs a server node S with a "sink" service (reads everything,
// answers one byte at EOF) and an "echo" service, and a client node A that
// trusts S at its address. Figures from these benchmarks are for profiles
// and for comparing builds; bench/ compares p2pd with other tunnels.
func benchPair(b *testing.B) (a *node.Node, stop func()) {
	a, _, stop = benchPairS(b)
	return a, stop
}

// benchPairS is benchPair that also returns A's [[peers]] entry for S.
func benchPairS(b *testing.B) (a *node.Node, sPeer node.Peer, stop func()) {
	b.Helper()
	target := testnet.Serve(b, func(c net.Conn) {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			return
		}
		if buf[0] == 'e' { // echo
			c.Write(buf[:n])
			io.Copy(c, c)
			return
		}
		io.Copy(io.Discard, c)
		c.Write([]byte{1})
	})
	ks, _ := identity.GenerateKey(nil)
	ka, _ := identity.GenerateKey(nil)
	s, err := node.New(node.Config{Name: "S", Key: ks, Listen: []string{"127.0.0.1:0"},
		Peers:    []node.Peer{{Name: "A", ID: ka.PeerID()}},
		Services: []node.Service{{Name: "svc", Target: target.String(), Allow: []string{"*"}}}})
	if err != nil {
		b.Fatal(err)
	}
	sPeer = node.Peer{Name: "S", ID: ks.PeerID(), Addresses: s.ListenAddrs()}
	a, err = node.New(node.Config{Name: "A", Key: ka, Listen: []string{"127.0.0.1:0"},
		Peers: []node.Peer{sPeer}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	for _, n := range []*node.Node{s, a} {
		runs.Add(1)
		go func() { defer runs.Done(); n.Run(ctx) }()
	}
	return a, sPeer, func() { cancel(); runs.Wait() }
}

// BenchmarkBulk moves b.N chunks of 64 KiB through one overlay stream.
func BenchmarkBulk(b *testing.B) {
	a, stop := benchPair(b)
	defer stop()
	c, err := a.DialService(context.Background(), "S", "svc")
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	chunk[0] = 's'
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	c.Close()
}

// BenchmarkNewStream opens a stream, echoes one byte and closes, b.N times.
func BenchmarkNewStream(b *testing.B) {
	a, stop := benchPair(b)
	defer stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		echoOneByte(b, a)
	}
}

// BenchmarkSessionChurn ends A's session to S by dropping S from A's peers,
// puts S back and echoes one byte over the new session, b.N times: the
// whole cost of a new session between running nodes.
func BenchmarkSessionChurn(b *testing.B) {
	a, sPeer, stop := benchPairS(b)
	defer stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.Apply(nil, nil); err != nil {
			b.Fatal(err)
		}
		if err := a.Apply([]node.Peer{sPeer}, nil); err != nil {
			b.Fatal(err)
		}
		echoOneByte(b, a)
	}
}

// echoOneByte opens a stream from a to S's echo service, echoes one byte
// and closes it.
func echoOneByte(b *testing.B, a *node.Node) {
	c, err := a.DialService(context.Background(), "S", "svc")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Write([]byte{'e'}); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	c.Close()
}
