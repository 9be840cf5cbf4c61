package testnet

import (
	"net"
	"sync"
	"testing"
)

// Serve runs handle for every connection to a new TCP listener on
// 127.0.0.1 and returns its address. The test's cleanup closes the listener
// and waits for the handlers, which close their connections when they return.
func Serve(tb testing.TB, handle func(net.Conn)) *net.TCPAddr {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return ln.Addr().(*net.TCPAddr)
}
