package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// logBuffer collects a Forwarder's log as text lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log lines that contain every one of subs.
func (b *logBuffer) lines(subs ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLoggedForwarder(t *testing.T, d proxy.Dialer) (*proxy.Forwarder, *logBuffer) {
	logs := new(logBuffer)
	f := proxy.NewForwarder(d, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { f.Close(context.Background()) })
	return f, logs
}

// emfileListener fails its next fails accepts with EMFILE, as the kernel
// does when the process is out of descriptors, then accepts for real.
type emfileListener struct {
	net.Listener
	fails atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func forwardStats(t *testing.T, f *proxy.Forwarder) proxy.ForwardStats {
	t.Helper()
	st := f.Stats()
	if len(st) != 1 {
		t.Fatalf("Stats = %+v; want one forward", st)
	}
	return st[0]
}

// TestForwarderSurvivesEMFILE gives a forward a listener whose first
// accepts fail with EMFILE: the loop backs off and accepts again, every
// failure is counted, and the episode logs one warning (with the limit and
// the fix) and one line when it is over.
func TestForwarderSurvivesEMFILE(t *testing.T) {
	const fails = 6
	d := newEchoDialer(t)
	f, logs := newLoggedForwarder(t, d)
	proxy.WrapListen(f, func(ln net.Listener) net.Listener {
		l := &emfileListener{Listener: ln}
		l.fails.Store(fails)
		return l
	})
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "svc")}); err != nil {
		t.Fatal(err)
	}
	c := dialLocal(t, addrOf(t, f, "127.0.0.1:0"))
	if err := finish(c, randomBytes(256<<10)); err != nil {
		t.Fatalf("through the forward after %d failed accepts: %v\n%s", fails, err, logs)
	}
	if st := forwardStats(t, f); st.AcceptErrors != fails || st.Total != 1 {
		t.Errorf("AcceptErrors = %d, Total = %d; want %d and 1", st.AcceptErrors, st.Total, fails)
	}
	warns := logs.lines("level=WARN", "accept failing")
	if len(warns) != 1 {
		t.Fatalf("%d accept warnings, want 1 for the episode:\n%s", len(warns), logs)
	}
	for _, want := range []string{"too many open files", "rlimit_nofile=", "LimitNOFILE=", "ulimit -n", "service=svc"} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("warning %q does not contain %q", warns[0], want)
		}
	}
	if again := logs.lines("level=INFO", "accepting again after 6 failed accepts"); len(again) != 1 {
		t.Errorf("%d 'accepting again' lines, want 1:\n%s", len(again), logs)
	}
}

// TestForwarderCloseDuringBackoff closes a forward whose accepts keep
// failing: Close returns (the backoff does not hold it) and the accept loop
// is gone (the package's leak check).
func TestForwarderCloseDuringBackoff(t *testing.T) {
	d := newEchoDialer(t)
	f := proxy.NewForwarder(d, nil)
	proxy.WrapListen(f, func(ln net.Listener) net.Listener {
		l := &emfileListener{Listener: ln}
		l.fails.Store(1 << 40)
		return l
	})
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "svc")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(failBound)
	for forwardStats(t, f).AcceptErrors < 8 { // backoff past its 1 s ceiling's first step
		if time.Now().After(deadline) {
			t.Fatalf("accept errors stuck at %d", forwardStats(t, f).AcceptErrors)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Close waited out its deadline for an accept loop in backoff")
	}
}

// TestForwarderConnectionCap holds a forward at its cap of 2: further
// connections are reset at once and counted, one warning names the key,
// the two held connections stay byte-exact, and a raised cap or a
// connection that ends makes room again.
func TestForwarderConnectionCap(t *testing.T) {
	d := newEchoDialer(t)
	f, logs := newLoggedForwarder(t, d)
	fw := fwd("127.0.0.1:0", "svc")
	fw.MaxConnections = 2
	if err := f.Apply([]proxy.Forward{fw}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, f, "127.0.0.1:0")
	c1, c2 := dialLocal(t, addr), dialLocal(t, addr)
	for _, c := range []*net.TCPConn{c1, c2} {
		if err := roundTrip(c, []byte("held")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		expectRefused(t, addr)
		if st := forwardStats(t, f); st.Refused != uint64(i) || st.Active != 2 || st.Total != 2 {
			t.Errorf("after %d refused: Refused = %d, Active = %d, Total = %d; want %d, 2, 2", i, st.Refused, st.Active, st.Total, i)
		}
	}
	warns := logs.lines("level=WARN", "connection cap")
	if len(warns) != 1 {
		t.Fatalf("%d cap warnings for 2 refused connections, want 1 (rate-limited):\n%s", len(warns), logs)
	}
	if !strings.Contains(warns[0], "max_connections=2") || !strings.Contains(warns[0], "raise max_connections") {
		t.Errorf("cap warning %q does not name the cap and the key", warns[0])
	}
	// Raising the cap (a reload) takes effect for the next connection.
	fw.MaxConnections = 3
	if err := f.Apply([]proxy.Forward{fw}); err != nil {
		t.Fatal(err)
	}
	if err := finish(dialLocal(t, addr), []byte("third")); err != nil {
		t.Errorf("connection under the raised cap: %v", err)
	}
	if err := finish(c1, randomBytes(1<<20)); err != nil {
		t.Errorf("first held connection: %v", err)
	}
	if err := finish(c2, randomBytes(1<<20)); err != nil {
		t.Errorf("second held connection: %v", err)
	}
	c1.Close()
	c2.Close()
	deadline := time.Now().Add(failBound)
	for forwardStats(t, f).Active != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("connections still active: %+v", forwardStats(t, f))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := finish(dialLocal(t, addr), []byte("room again")); err != nil {
		t.Errorf("connection under the cap: %v", err)
	}
	if st := forwardStats(t, f); st.MaxConnections != 3 || st.Refused != 2 || st.Total != 4 {
		t.Errorf("Stats = %+v; want MaxConnections 3, Refused 2, Total 4", st)
	}
}

// expectRefused connects to a forward at its cap: the connection ends at
// once with no bytes (EOF or a reset).
func expectRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connect to a forward at its cap: %v; want success or ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(failBound))
	got, err := io.ReadAll(c)
	if len(got) != 0 {
		t.Errorf("refused connection read %d bytes", len(got))
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("refused connection ended with %v; want EOF or ECONNRESET", err)
	}
}

func TestForwarderDefaultCap(t *testing.T) {
	f := newForwarder(t, newEchoDialer(t))
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "svc")}); err != nil {
		t.Fatal(err)
	}
	if got := forwardStats(t, f).MaxConnections; got != proxy.DefaultMaxConnections {
		t.Errorf("MaxConnections of a forward without one = %d, want 8192", got)
	}
}
