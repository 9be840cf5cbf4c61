package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// topo is where the two sides of every system run. On loopback both sides
// share the root network namespace and 127.0.0.1. In the netns topology the
// client side (harness client, tunnel client, p2pd A) sits in one namespace
// and the server side (tunnel server, p2pd B, backend) in another; the link
// between them is a veth pair, and each side's own loopback carries its
// local legs.
type topo struct {
	name     string
	clientNS string // "" for the root namespace
	serverNS string
	clientIP string // the client side's address on the link
	serverIP string // the server side's address on the link
	backIP   string // where the backend listens, in the server namespace
	ns       *nsDialer
}

func loopbackTopo() *topo {
	return &topo{name: "loopback", clientIP: "127.0.0.1", serverIP: "127.0.0.1", backIP: "127.0.0.1"}
}

// prefix is the command prefix that runs a program in a namespace.
func (t *topo) prefix(ns string) []string {
	if ns == "" {
		return nil
	}
	return []string{"ip", "netns", "exec", ns}
}

// dialTCP connects from the client side.
func (t *topo) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	if t.ns == nil {
		return d.DialContext(ctx, "tcp", addr)
	}
	var c net.Conn
	var err error
	t.ns.do(func() { c, err = d.DialContext(ctx, "tcp", addr) })
	return c, err
}

// listenUDP opens a UDP socket on the client side (for the raw quic-go client).
func (t *topo) listenUDP() (*net.UDPConn, error) {
	listen := func() (*net.UDPConn, error) {
		return net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(t.clientIP)})
	}
	if t.ns == nil {
		return listen()
	}
	var c *net.UDPConn
	var err error
	t.ns.do(func() { c, err = listen() })
	return c, err
}

// Ports are picked at random below Linux's default ephemeral range
// (32768–60999), so that no socket that asks the kernel for any port takes
// one between the pick and the daemon's bind.
const (
	portLow  = 20000
	portHigh = 32767
)

// freePort returns a port that is free on 127.0.0.1 for proto ("tcp" or
// "udp"). Namespaces start empty, so it serves them too.
func freePort(proto string) (int, error) {
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow+1)
		if portFree(proto, p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("bench: no free %s port in %d-%d", proto, portLow, portHigh)
}

func portFree(proto string, p int) bool {
	if proto == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// hostPort joins an IP and a free port of proto.
func hostPort(ip, proto string) (string, error) {
	p, err := freePort(proto)
	if err != nil {
		return "", fmt.Errorf("bench: free %s port: %w", proto, err)
	}
	return net.JoinHostPort(ip, strconv.Itoa(p)), nil
}

// waitTCP dials addr from the client side until it answers.
func (t *topo) waitTCP(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := t.dialTCP(dctx, addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("bench: %s does not accept connections: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
