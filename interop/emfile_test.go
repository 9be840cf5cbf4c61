package interop

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p2pd/p2pd/internal/testnet"
)

// openFDs is how many files process pid has open, from /proc.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("counting p2pd's open files: %v", err)
	}
	return len(ents)
}

// holdEcho opens a connection through a forward to an echo service and
// proves it carries bytes; the caller keeps it open.
func holdEcho(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	probe := make([]byte, 64)
	rand.Read(probe)
	got := make([]byte, len(probe))
	if _, err := c.Write(probe); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(probe) {
		c.Close()
		return nil, fmt.Errorf("echo of the probe: %q, %v", got, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// TestForwardEMFILE runs the forwarding daemon out of file descriptors
// (RLIMIT_NOFILE lowered with prlimit(2) while it runs) by holding
// connections through one of its two forwards. The forward counts the
// failed accepts, logs one warning for the episode, and once the
// connections close it accepts again within its 1 s backoff ceiling; the
// other forward works too.
func TestForwardEMFILE(t *testing.T) {
	echo := testnet.NewEcho(t)
	a, b := newNode(t, "a"), newNode(t, "b")
	p1, p2 := freePort(t, "tcp"), freePort(t, "tcp")
	b.writeConfig(a.peerTOML() + fmt.Sprintf("[[services]]\nname = \"echo\"\ntarget = %q\nallow = [\"a\"]\n", echo.Addr()))
	a.writeConfig(b.peerTOML() + fmt.Sprintf(`[[forwards]]
listen = "127.0.0.1:%d"
peer = "b"
service = "echo"

[[forwards]]
listen = "127.0.0.1:%d"
peer = "b"
service = "echo"
max_connections = 2
`, p1, p2))
	b.start()
	a.start()
	addr1, addr2 := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
	for _, addr := range []string{addr1, addr2} {
		if err := echoThrough(addr, []byte("warm")); err != nil { // the session is up
			t.Fatalf("%s before the limit: %v\n%s", addr, err, a.log)
		}
	}

	pid := a.cmd.Process.Pid
	base := openFDs(t, pid)
	limit := 64
	if base+8 > limit {
		limit = base + 32
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(limit), Max: uint64(limit)}, nil); err != nil {
		t.Fatalf("prlimit p2pd to %d files: %v", limit, err)
	}

	// Hold connections until p2pd has every descriptor in use, then one
	// more that it cannot accept; give its accept loop time to fail and
	// back off several times.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for openFDs(t, pid) < limit {
		if len(held) > limit {
			t.Fatalf("%d connections held and p2pd has %d of %d files open", len(held), openFDs(t, pid), limit)
		}
		c, err := holdEcho(addr1)
		if err != nil {
			t.Fatalf("connection %d (p2pd had %d of %d files open): %v\n%s", len(held)+1, openFDs(t, pid), limit, err, a.log)
		}
		held = append(held, c)
	}
	pending, err := net.Dial("tcp", addr1) // completes in the kernel's backlog
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, pending)
	time.Sleep(1500 * time.Millisecond) // failed accepts at 5, 10, 20, ... 640 ms
	t.Logf("p2pd had %d files open at rest; with RLIMIT_NOFILE %d it ran out after %d connections through the forward",
		base, limit, len(held)-1)

	// Free the descriptors: recovery is due within the 1 s backoff ceiling,
	// plus the new connection's round trip through both daemons.
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t, pid) >= limit {
		if time.Now().After(deadline) {
			t.Fatalf("p2pd still has %d files open 10 s after the connections closed", openFDs(t, pid))
		}
		time.Sleep(2 * time.Millisecond)
	}
	freed := time.Now()
	data := make([]byte, 256<<10)
	rand.Read(data)
	echoed := make(chan error, 1)
	go func() { echoed <- echoThrough(addr1, data) }()
	select {
	case err := <-echoed:
		if err != nil {
			t.Fatalf("first forward after the descriptors were freed: %v\n%s", err, a.log)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("first forward carries nothing 10 s after the descriptors were freed\n%s", a.log)
	}
	recovered := time.Since(freed)
	t.Logf("a connection through the forward was echoed %v after p2pd's descriptors were freed", recovered.Round(time.Millisecond))
	const roundTripAllowance = 250 * time.Millisecond
	if recovered > time.Second+roundTripAllowance {
		t.Errorf("the forward took %v to carry a connection after the descriptors were freed; the backoff ceiling is 1 s", recovered)
	}
	if err := echoThrough(addr2, data); err != nil {
		t.Fatalf("second forward after the episode: %v\n%s", err, a.log)
	}
	// The second forward's cap of 2 (max_connections): a third connection
	// is reset at once, the two held ones carry on.
	for range 2 {
		c, err := holdEcho(addr2)
		if err != nil {
			t.Fatalf("second forward under its cap: %v", err)
		}
		held = append(held, c)
	}
	if c, err := net.Dial("tcp", addr2); err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(make([]byte, 1))
		c.Close()
		if n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
			t.Errorf("third connection to a forward with max_connections = 2: read %d bytes, %v; want EOF or a reset", n, err)
		}
	}
	for _, c := range held {
		if _, err := c.Write([]byte("still")); err != nil {
			t.Errorf("held connection after the refusal: %v", err)
		}
		if got, err := io.ReadAll(io.LimitReader(c, 5)); err != nil || string(got) != "still" {
			t.Errorf("held connection after the refusal echoed %q, %v", got, err)
		}
	}
	for _, c := range held {
		c.Close()
	}
	held = nil

	var doc struct {
		Forwards []struct {
			Listen         string `json:"listen"`
			MaxConnections int    `json:"max_connections"`
			Refused        uint64 `json:"refused"`
			AcceptErrors   uint64 `json:"accept_errors"`
		} `json:"forwards"`
	}
	if out, err := ctlJSON(t, a, "forwards", &doc); err != nil || len(doc.Forwards) != 2 {
		t.Fatalf("p2pctl --json forwards: %v\n%s", err, out)
	}
	for _, f := range doc.Forwards {
		switch {
		case f.Listen == addr1 && f.AcceptErrors == 0:
			t.Errorf("forward %s: accept_errors 0 after running out of descriptors", f.Listen)
		case f.Listen == addr2 && f.AcceptErrors != 0:
			t.Errorf("forward %s had no connections in the episode but shows accept_errors %d", f.Listen, f.AcceptErrors)
		case f.Listen == addr1 && (f.Refused != 0 || f.MaxConnections != 8192):
			t.Errorf("forward %s: refused %d, max_connections %d; want 0 and the default 8192", f.Listen, f.Refused, f.MaxConnections)
		case f.Listen == addr2 && (f.Refused != 1 || f.MaxConnections != 2):
			t.Errorf("forward %s: refused %d, max_connections %d; want 1 and 2 as configured", f.Listen, f.Refused, f.MaxConnections)
		}
		t.Logf("forward %s: accept_errors %d, refused %d", f.Listen, f.AcceptErrors, f.Refused)
	}

	if err := a.stop(); err != nil {
		t.Fatalf("p2pd a exited with %v after SIGTERM\n%s", err, a.log)
	}
	log := a.log.String() // the daemon has exited: nothing writes to it now
	var warns []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, "accept failing") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("%d accept-failure warnings, want one for the episode:\n%s", len(warns), log)
	}
	t.Logf("the episode's warning: %s", strings.TrimSpace(warns[0]))
	for _, want := range []string{"level=WARN", addr1, "too many open files", fmt.Sprintf("rlimit_nofile=%d", limit), "LimitNOFILE=", "ulimit -n"} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("warning %q does not name %q", warns[0], want)
		}
	}
	if n := strings.Count(log, "accepting again after "); n != 1 {
		t.Errorf("%d 'accepting again' lines, want 1:\n%s", n, log)
	}
	if n := strings.Count(log, "connection cap"); n != 1 || !strings.Contains(log, "max_connections=2") {
		t.Errorf("%d connection-cap warnings naming max_connections=2, want 1:\n%s", n, log)
	}
}
