package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssKiB is a process's resident set (VmRSS) in KiB, or 0.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(f), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// TestConcurrentConnections (RELIABILITY.md L1, loopback): 500 clients at
// once each send 1 MiB of random bytes through a forward to an echo
// service and read it back; every echo is byte-exact and neither daemon
// grows by 64 MiB or more while they run.
func TestConcurrentConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1 GiB")
	}
	const clients, size = 500, 1 << 20
	a, b, addr := echoForwardPair(t)
	if err := echoThrough(addr, []byte("warm")); err != nil { // the session is up
		t.Fatal(err)
	}
	baseA, baseB := rssKiB(a.cmd.Process.Pid), rssKiB(b.cmd.Process.Pid)
	objA, objB := objects(a), objects(b)
	var peakA, peakB atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			peakA.Store(max(peakA.Load(), rssKiB(a.cmd.Process.Pid)))
			peakB.Store(max(peakB.Load(), rssKiB(b.cmd.Process.Pid)))
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			data := make([]byte, size)
			rand.Read(data)
			errs <- echoThrough(addr, data)
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed == 0 {
				t.Errorf("first failure: %v", err)
			}
			failed++
		}
	}
	growA, growB := (peakA.Load()-baseA)>>10, (peakB.Load()-baseB)>>10
	t.Logf("%d clients × 1 MiB echoed in %v; %d failed; peak RSS growth: a %d MiB, b %d MiB",
		clients, time.Since(start).Round(time.Millisecond), failed, growA, growB)
	if failed > 0 {
		t.Fatalf("%d of %d connections failed", failed, clients)
	}
	if growA >= 64 || growB >= 64 {
		t.Errorf("RSS grew by %d MiB (a) and %d MiB (b); the bound is 64 MiB", growA, growB)
	}
	// Nothing leaks: once the connections are closed, open files and
	// goroutines come back to what they were (a little slack for timers
	// and keep-alives that happen to be running). The session keeps the
	// extra QUIC connections (lanes) the load made it add, until it ends:
	// each holds perLane goroutines and no file.
	const perLane = 3
	for _, n := range []struct {
		node *testNode
		base daemonObjects
	}{{a, objA}, {b, objB}} {
		var now daemonObjects
		var lanes int
		deadline := time.Now().Add(15 * time.Second)
		for {
			now, lanes = objects(n.node), extraLanes(t, n.node)
			if now.fds <= n.base.fds+5 && now.goroutines <= n.base.goroutines+10+perLane*lanes || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s: %d fds and %d goroutines before, %d and %d after (%d extra lanes)", n.node.name, n.base.fds, n.base.goroutines, now.fds, now.goroutines, lanes)
		if lanes > clients/64+2 {
			t.Errorf("%s: %d extra lanes for %d concurrent connections", n.node.name, lanes, clients)
		}
		if now.fds > n.base.fds+5 || now.goroutines > n.base.goroutines+10+perLane*lanes {
			t.Errorf("%s leaks: %d fds and %d goroutines before the load, %d and %d 15 s after it (%d extra lanes)",
				n.node.name, n.base.fds, n.base.goroutines, now.fds, now.goroutines, lanes)
		}
	}
}

// extraLanes is how many QUIC connections n's sessions have beyond one each.
func extraLanes(t *testing.T, n *testNode) int {
	var doc struct {
		Sessions []struct {
			Conns int `json:"conns"`
		} `json:"sessions"`
	}
	if _, err := ctlJSON(t, n, "sessions", &doc); err != nil {
		t.Fatal(err)
	}
	extra := 0
	for _, s := range doc.Sessions {
		extra += max(s.Conns-1, 0)
	}
	return extra
}

// daemonObjects are a daemon's open files and goroutines.
type daemonObjects struct{ fds, goroutines int }

// objects counts n's open files (/proc) and goroutines (its pprof endpoint).
func objects(n *testNode) daemonObjects {
	var o daemonObjects
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", n.cmd.Process.Pid)); err == nil {
		o.fds = len(ents)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", n.socket())
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://p2pd/debug/pprof/goroutine?debug=1")
	if err != nil {
		return o
	}
	defer resp.Body.Close()
	var total int
	fmt.Fscanf(resp.Body, "goroutine profile: total %d", &total)
	o.goroutines = total
	return o
}

// echoThrough sends data through addr, half-closes, and checks that exactly
// data comes back.
func echoThrough(addr string, data []byte) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	werr := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, bytes.NewReader(data))
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d bytes: %w", n, rerr)
	}
	if want := sha256.Sum256(data); n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("echo of %d bytes came back as %d bytes, SHA-256 %s", len(data), n, "mismatch")
	}
	return nil
}
