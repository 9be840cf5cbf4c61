package proxy_test

import (
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failBound bounds every wait; no test asserts on how fast anything is.
const failBound = 10 * time.Second

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	for _, x := range []net.Conn{c, s} {
		x.SetDeadline(time.Now().Add(failBound))
	}
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// randomBytes returns n random bytes (crypto/rand.Read does not fail).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// echoServer is the shared loopback echo server of the tests.
type echoServer = testnet.Echo

func newEchoServer(t *testing.T) *echoServer { return testnet.NewEcho(t) }
