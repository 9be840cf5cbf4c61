package interop

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestStopClosesForwardsFirst: a daemon told to stop (SIGTERM) while a
// connection through its forward is open stops taking new connections at
// once (the port refuses them) instead of taking them in while its
// sessions drain and then failing them; the open connection is still
// carried byte-exact while the daemon drains, and it exits 0.
func TestStopClosesForwardsFirst(t *testing.T) {
	a, _, addr := echoForwardPair(t)

	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	roundTrip := func(msg []byte) error {
		held.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := held.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(held, got); err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return errors.New("the echo differs")
		}
		return nil
	}
	if err := roundTrip([]byte("before the stop")); err != nil {
		t.Fatalf("through a's forward: %v\n--- a:\n%s", err, a.log)
	}

	a.cmd.Process.Signal(syscall.SIGTERM)
	refused := false
	deadline := time.Now().Add(10 * time.Second)
	for !refused && time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("a new connection to the stopping daemon's forward: %v; want it refused", err)
		}
		refused = true
	}
	if !refused {
		t.Fatal("the stopping daemon's forward still took connections 10 s after SIGTERM")
	}
	select {
	case err := <-a.exit:
		a.exit <- err
		t.Fatalf("the forward refused connections only once the daemon had exited (%v); want it to stop taking them while it drains", err)
	default:
	}
	if err := roundTrip([]byte("while the daemon drains")); err != nil {
		t.Fatalf("the connection open at the stop, while the daemon drains: %v\n--- a:\n%s", err, a.log)
	}
	held.Close()
	if err := a.stop(); err != nil {
		t.Fatalf("p2pd a exited with %v after SIGTERM\n%s", err, a.log)
	}
}
