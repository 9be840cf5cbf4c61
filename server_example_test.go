package p2pd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pd/p2pd"
	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/identity"
)

// exampleConfig is a loopback node in dir with a fresh key and no
// discovery; it returns the config and the node's peer ID.
func exampleConfig(dir, name string) (*config.Config, identity.PeerID) {
	cfg := config.Default()
	cfg.Dir, cfg.Node.StateDir = dir, dir
	cfg.Node.Name = name
	cfg.Node.KeyFile = filepath.Join(dir, "identity.key")
	cfg.Node.ControlSocket = filepath.Join(dir, "control.sock") // unused by Server
	cfg.Node.Listen = []string{"127.0.0.1:0"}
	cfg.Node.ListenTCP = []string{} // no TCP carrier inbound
	cfg.Discovery = config.Discovery{}
	key, _, err := identity.LoadOrCreateKeyFile(cfg.Node.KeyFile)
	if err != nil {
		log.Fatal(err)
	}
	return cfg, key.PeerID()
}

// exampleServers starts two Servers on loopback, in a directory of their
// own: "server", which trusts "client", and "client", which trusts "server"
// at its address. done closes both and removes the directory.
func exampleServers() (server, client *p2pd.Server, done func()) {
	dir, err := os.MkdirTemp("", "p2pd-example")
	if err != nil {
		log.Fatal(err)
	}
	serverCfg, serverID := exampleConfig(filepath.Join(dir, "server"), "server")
	clientCfg, clientID := exampleConfig(filepath.Join(dir, "client"), "client")
	serverCfg.Peers = []config.Peer{{Name: "client", ID: clientID}}
	server = &p2pd.Server{Config: serverCfg}
	if err := server.Start(); err != nil {
		log.Fatal(err)
	}
	clientCfg.Peers = []config.Peer{{Name: "server", ID: serverID, Addresses: server.Addrs()}}
	client = &p2pd.Server{Config: clientCfg}
	return server, client, func() {
		client.Close()
		server.Close()
		os.RemoveAll(dir)
	}
}

// Two programs on one host: "server" serves an echo service from its own
// code, "client" dials it over the overlay (exampleServers sets up their
// trust).
func ExampleServer() {
	server, client, done := exampleServers()
	defer done()
	ln, err := server.Listen("echo", "client")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()

	c, err := client.Dial(context.Background(), "server", "echo")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hello over p2pd")
	c.(interface{ CloseWrite() error }).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	// Output: hello over p2pd
}

// A udp service served from the program: each datagram comes with its
// flow's address, and the answer goes back on that flow.
func ExampleServer_ListenPacket() {
	server, client, done := exampleServers()
	defer done()
	pc, err := server.ListenPacket("upper", "client")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(bytes.ToUpper(buf[:n]), from)
		}
	}()

	c, err := client.DialUDP(context.Background(), "server", "upper")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("one datagram"))
	buf := make([]byte, 100)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf[:n]))
	// Output: ONE DATAGRAM
}
