//go:build linux

package node_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// stallTarget is a TCP listener whose accept queue is full, so that a
// connect to it hangs (the kernel drops the SYN) until release makes room;
// then it echoes what it accepts.
type stallTarget struct {
	fd      int
	port    int
	fillers []net.Conn
	wg      sync.WaitGroup
	mu      sync.Mutex // guards conns
	conns   []net.Conn
}

func newStallTarget(t *testing.T) *stallTarget {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	st := &stallTarget{fd: fd}
	t.Cleanup(st.close)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	st.port = sa.(*syscall.SockaddrInet4).Port
	// Fill the accept queue: connect until the kernel stops completing
	// handshakes.
	for range 8 {
		c, err := net.DialTimeout("tcp", st.addr(), 300e6)
		if err != nil {
			return st
		}
		st.fillers = append(st.fillers, c)
	}
	t.Skip("could not fill a listener's accept queue; cannot stall a connect")
	return st
}

func (st *stallTarget) addr() string { return fmt.Sprintf("127.0.0.1:%d", st.port) }

// connecting reports whether some socket is in SYN_SENT towards the target.
func (st *stallTarget) connecting(t *testing.T) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("cannot watch connects: %v", err)
	}
	want := fmt.Sprintf("0100007F:%04X", st.port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[2] == want && f[3] == "02" {
			return true
		}
	}
	return false
}

// release accepts and drops the fillers, then echoes every later connection.
func (st *stallTarget) release() {
	st.wg.Go(func() {
		for {
			nfd, _, err := syscall.Accept(st.fd)
			if err != nil {
				return
			}
			f := os.NewFile(uintptr(nfd), "accepted")
			c, err := net.FileConn(f) // a dup; f owns nfd
			f.Close()
			if err != nil {
				continue
			}
			st.mu.Lock()
			st.conns = append(st.conns, c)
			st.mu.Unlock()
			st.wg.Go(func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	for _, c := range st.fillers {
		c.Close()
	}
}

func (st *stallTarget) close() {
	syscall.Shutdown(st.fd, syscall.SHUT_RDWR) // wakes a blocked Accept
	syscall.Close(st.fd)
	for _, c := range st.fillers {
		c.Close()
	}
	st.mu.Lock()
	for _, c := range st.conns {
		c.Close()
	}
	st.mu.Unlock()
	st.wg.Wait()
}

// TestReloadRevokesStreamBeingSetUp reloads while B's stream to X has
// passed the access check but is still connecting to X's target. Once
// Apply has returned, B must have no working stream to X: the stream set
// up across the reload has to be refused or reset, like one already
// spliced.
func TestReloadRevokesStreamBeingSetUp(t *testing.T) {
	target := newStallTarget(t)
	a, b := newNode(t, node.Config{Name: "A"}), newNode(t, node.Config{Name: "B"})
	peers := []node.Peer{a.peer("A", false), b.peer("B", false)}
	services := []node.Service{{Name: "X", Target: target.addr(), Allow: []string{"A", "B"}}}
	srv := startNode(t, node.Config{Name: "S", Peers: peers, Services: services})
	if err := b.Apply([]node.Peer{srv.peer("S", true)}, nil); err != nil {
		t.Fatal(err)
	}
	b.run()

	type result struct {
		ls  *liveStream
		err error
	}
	opened := make(chan result, 1)
	ctx := testCtx(t)
	go func() {
		c, err := b.DialService(ctx, "S", "X")
		if err != nil {
			opened <- result{err: err}
			return
		}
		opened <- result{ls: &liveStream{name: "B→X", c: c}}
	}()
	waitFor(t, "S to be connecting to X's target for B's stream", func() bool { return target.connecting(t) })

	services[0].Allow = []string{"A"}
	if err := srv.Apply(peers, services); err != nil {
		t.Fatal(err)
	}
	target.release()

	r := <-opened
	if r.err != nil {
		var se *transport.StatusError
		if !errors.As(r.err, &se) || se.Status != transport.StatusAccessDenied {
			t.Fatalf("B→X across the reload: err = %v, want %q or a stream reset with code %#x",
				r.err, transport.StatusAccessDenied, transport.StreamRevoked)
		}
		return
	}
	defer r.ls.c.Abort()
	err := r.ls.roundTrip(randomBytes(1024))
	if err == nil {
		t.Fatal("B→X works after Apply took X away from B: the stream set up across the reload escaped revocation")
	}
	if !isStreamReset(err, transport.StreamRevoked) {
		t.Errorf("B→X across the reload ended with %v, want a reset with code %#x (revoked)", err, transport.StreamRevoked)
	}
}
