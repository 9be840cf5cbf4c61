package interop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
)

// TestPeerKilledMidTransfer (RELIABILITY.md F1): the server's p2pd is
// killed with SIGKILL in the middle of a slow download and started again
// 2 s later. The client's connection ends with a reset, not a clean EOF
// that would pass a truncated download off as whole, before the QUIC idle
// timeout; a new connection succeeds within 5 s of the restart, without
// anything done to the client's daemon. It runs over both carriers.
func TestPeerKilledMidTransfer(t *testing.T) {
	for _, transport := range faultCarriers {
		t.Run(transport, func(t *testing.T) { testPeerKilledMidTransfer(t, transport) })
	}
}

func testPeerKilledMidTransfer(t *testing.T, transport string) {
	const chunk, chunks = 64 << 10, 1024 // 64 MiB at about 3 MiB/s
	src := testnet.Serve(t, func(c net.Conn) {
		buf := make([]byte, chunk)
		for range chunks {
			if _, err := c.Write(buf); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	echo := testnet.NewEcho(t)
	a, b := newNode(t, "a"), newNode(t, "b")
	slow, fecho := freePort(t, "tcp"), freePort(t, "tcp")
	b.writeConfig(a.peerTOML() + fmt.Sprintf("[[services]]\nname = \"slow\"\ntarget = %q\nallow = [\"a\"]\n\n"+
		"[[services]]\nname = \"echo\"\ntarget = %q\nallow = [\"a\"]\n", src.String(), echo.Addr()))
	a.writeConfig(b.peerTOML() + fmt.Sprintf("transport = %q\n\n", transport) + fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = \"slow\"\n\n"+
		"[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = \"echo\"\n", slow, fecho))
	b.start()
	a.start()

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", slow))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	ended := make(chan error, 1)
	var got int64
	go func() {
		n, err := io.Copy(io.Discard, c)
		got = n
		if err == nil {
			err = io.EOF // io.Copy reports a clean end as nil
		}
		ended <- err
	}()
	time.Sleep(time.Second)
	wantCarrier(t, a, "b", transport)
	b.kill()
	killed := time.Now()
	time.Sleep(2 * time.Second)
	b.start()
	restarted := time.Now()
	waitFor(t, "a new connection through the restarted peer", 5*time.Second, func() bool {
		return echoThrough(fmt.Sprintf("127.0.0.1:%d", fecho), []byte("after the restart")) == nil
	})
	t.Logf("a new connection worked %v after the restart", time.Since(restarted).Round(100*time.Millisecond))

	select {
	case err := <-ended:
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF):
			t.Fatalf("the download ended with a clean EOF after %d of %d bytes: a truncation that looks whole", got, chunk*chunks)
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("the download hung until the test's deadline after %d bytes", got)
		}
		t.Logf("the download ended %v after the kill, with %v after %d bytes", time.Since(killed).Round(100*time.Millisecond), err, got)
	case <-time.After(40 * time.Second):
		t.Fatal("the download did not end within 40 s of the kill")
	}
}
