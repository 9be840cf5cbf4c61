package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/internal/testnet"
)

type pendingDoc struct {
	Pending []struct {
		ID        string    `json:"id"`
		AltID     string    `json:"alt_id"`
		Name      string    `json:"name"`
		Remote    string    `json:"remote"`
		Carrier   string    `json:"carrier"`
		Count     uint64    `json:"count"`
		FirstSeen time.Time `json:"first_seen"`
		LastSeen  time.Time `json:"last_seen"`
	} `json:"pending"`
}

// pendingFor returns a's pending entry for the peer ID id, if any. The
// entry must name id exactly: as its id, with no alt_id (the initiator
// states its Ed25519 key in the handshake).
func pendingFor(t *testing.T, a *testNode, id string) (entry string, count uint64, ok bool) {
	t.Helper()
	out, err := a.ctl("--json", "pending")
	if err != nil {
		t.Fatalf("p2pctl pending: %v", err)
	}
	var doc pendingDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("p2pctl --json pending: %v: %s", err, out)
	}
	for _, p := range doc.Pending {
		if p.ID == id || p.AltID == id {
			if p.ID != id || p.AltID != "" {
				t.Errorf("pending entry for %s: id %q, alt_id %q; want the exact ID alone", id, p.ID, p.AltID)
			}
			return fmt.Sprintf("%+v", p), p.Count, true
		}
	}
	return string(out), 0, false
}

// ctlExit runs p2pctl on n and returns its stdout, stderr and exit code.
func (n *testNode) ctlExit(args ...string) (string, string, int) {
	n.t.Helper()
	cmd := exec.Command(bins.p2pctl, append([]string{"--socket", n.socket()}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitCode()
	}
	n.t.Fatalf("p2pctl %v: %v", args, err)
	return "", "", -1
}

// TestTrustAddFromInvite: a newcomer b dials a, which refuses it and lists
// it in `p2pctl pending` (and logs it once); `p2pctl trust add` on a with
// b's invite line makes b reachable and lets it through a's service, byte
// exact, with no file edited by hand and a's config file unchanged.
func TestTrustAddFromInvite(t *testing.T) {
	echo := testnet.NewEcho(t)
	a, b := newNode(t, "a"), newNode(t, "b")
	fwd := freePort(t, "tcp")
	a.writeConfig("# a comment the trust commands must keep\n" +
		fmt.Sprintf("[[services]]\nname = \"echo\"\ntarget = %q\nallow = []\n", echo.Addr()))
	b.writeConfig(a.alwaysOnTOML() + fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"a\"\nservice = \"echo\"\n", fwd))
	confBefore, err := os.ReadFile(a.config())
	if err != nil {
		t.Fatal(err)
	}
	a.start()
	b.start()
	addr := fmt.Sprintf("127.0.0.1:%d", fwd)

	// (c) b's refused handshakes show up in a's pending list.
	var count uint64
	waitFor(t, "b in a's p2pctl pending", 15*time.Second, func() bool {
		_, count, _ = pendingFor(t, a, b.id)
		return count >= 2 // b retries: the log line below must still be one
	})
	entry, _, _ := pendingFor(t, a, b.id)
	// The remote is b's UDP socket over QUIC, an ephemeral port over TCP.
	if !strings.Contains(entry, "Remote:127.0.0.1:") || !strings.Contains(entry, "Name:b ") {
		t.Errorf("pending entry %s: want b's address 127.0.0.1 and its claimed name", entry)
	}
	if err := echoThrough(addr, []byte("before trust")); err == nil {
		t.Fatal("b reached a's service before a trusted it")
	}

	line, err := b.ctl("invite")
	if err != nil {
		t.Fatalf("p2pctl invite: %v", err)
	}
	invite := strings.TrimSpace(string(line))
	if !strings.HasPrefix(invite, "p2pd1:") || strings.Contains(invite, "\n") {
		t.Fatalf("p2pctl invite printed %q, want one p2pd1: line", line)
	}
	// Offline, from the config and the key, the line says the same: b's ID
	// and name, 127.0.0.1 with b's UDP port and the TCP port it would bind.
	// (The daemon's TCP port is 0 when that port was taken: TCP is optional.)
	offline, err := exec.Command(bins.p2pd, "invite", "--config", b.config()).Output()
	if err != nil {
		t.Fatalf("p2pd invite: %v", err)
	}
	on, errOn := config.ParseInvite(invite)
	off, errOff := config.ParseInvite(strings.TrimSpace(string(offline)))
	want := netip.MustParseAddr("127.0.0.1")
	if errOn != nil || errOff != nil || on.ID.String() != b.id || off.ID != on.ID || on.Name != "b" || off.Name != "b" ||
		len(on.Addrs) != 1 || on.Addrs[0].IP != want || on.Addrs[0].UDP != uint16(b.port) ||
		len(off.Addrs) != 1 || off.Addrs[0] != (config.InviteAddr{IP: want, UDP: uint16(b.port), TCP: uint16(b.port)}) {
		t.Errorf("invites: p2pctl %+v (%v), p2pd %+v (%v); want b's ID and 127.0.0.1:%d", on, errOn, off, errOff, b.port)
	}
	if _, stderr, code := a.ctlExit("trust", "add", "bad name", invite); code != 2 || !strings.Contains(stderr, "use 1-63 letters") {
		t.Errorf("trust add with a bad name: exit %d, %q", code, stderr)
	}
	t.Logf("pending: %s; invite: %s", entry, invite)
	out, stderr, code := a.ctlExit("trust", "add", "b", invite, "--allow", "echo")
	if code != 0 {
		t.Fatalf("trust add: exit %d: %s%s", code, out, stderr)
	}
	if !strings.Contains(out, "trusted b ("+b.id+")") || !strings.Contains(out, "b may use: echo") {
		t.Errorf("trust add printed %q", out)
	}

	data := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	waitFor(t, "b's forward through the newly trusted session", 20*time.Second, func() bool {
		return echoThrough(addr, data[:1024]) == nil
	})
	if err := echoThrough(addr, data); err != nil {
		t.Fatalf("4 MiB through the forward: %v", err)
	}

	confAfter, _ := os.ReadFile(a.config())
	if !bytes.Equal(confBefore, confAfter) {
		t.Errorf("a's config file changed:\n%s\nwas\n%s", confAfter, confBefore)
	}
	fi, err := os.Stat(filepath.Join(a.dir, "trust.toml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("trust file: %v, mode %v; want it with mode 0600", err, fi.Mode().Perm())
	}
	peers, _ := a.ctl("--json", "peers")
	if !strings.Contains(string(peers), `"origin": "trust"`) {
		t.Errorf("p2pctl peers does not show b from the trust file: %s", peers)
	}
	if e, _, ok := pendingFor(t, a, b.id); ok {
		t.Errorf("b still pending after trust add: %s", e)
	}

	// A second add of the same key, and an unknown service, are refused with exit 2.
	if _, stderr, code := a.ctlExit("trust", "add", "b2", b.id); code != 2 || !strings.Contains(stderr, "already trusted as \"b\"") {
		t.Errorf("trust add of a trusted ID: exit %d, %q", code, stderr)
	}
	if _, stderr, code := a.ctlExit("trust", "add", "x", "p2pd1:AAAA"); code != 2 || !strings.Contains(stderr, "copy the whole line") {
		t.Errorf("trust add of a bad invite: exit %d, %q", code, stderr)
	}

	// The trust survives a restart: Load merges the trust file.
	a.stop()
	log := a.log.String()
	if n := strings.Count(log, "refused a handshake from an untrusted key"); n != 1 || !strings.Contains(log, b.id) {
		t.Errorf("the refusal was logged %d times at INFO (want once a minute per key, with its ID):\n%s", n, log)
	}
	a.start()
	waitFor(t, "b's forward after a restarts", 20*time.Second, func() bool {
		return echoThrough(addr, data[:1024]) == nil
	})
}

// TestTrustRemoveMidTransfer: `p2pctl trust rm b` on a, while b and c both
// download from a, closes b's session and stream within 1 s; c's download
// stays byte exact. b is a config-file peer: the config file is unchanged
// and the removal says what b was allowed to.
func TestTrustRemoveMidTransfer(t *testing.T) {
	const chunk, chunks = 32 << 10, 200 // 6.4 MiB over about 4 s
	payload := make([]byte, chunk*chunks)
	rand.NewChaCha8([32]byte{2}).Read(payload)
	src := testnet.Serve(t, func(c net.Conn) {
		for i := range chunks {
			if _, err := c.Write(payload[i*chunk : (i+1)*chunk]); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.Close()
	})
	a, b, c := newNode(t, "a"), newNode(t, "b"), newNode(t, "c")
	svc := fmt.Sprintf("[[services]]\nname = \"slow\"\ntarget = %q\nallow = [\"b\", \"c\"]\n\n"+
		"[[services]]\nname = \"other\"\ntarget = %q\nallow = [\"b\"]\n", src.String(), src.String())
	a.writeConfig(b.peerTOML() + c.peerTOML() + svc)
	confBefore, _ := os.ReadFile(a.config())
	fb, fc := freePort(t, "tcp"), freePort(t, "tcp")
	forward := func(port int) string {
		return a.alwaysOnTOML() + fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"a\"\nservice = \"slow\"\n", port)
	}
	b.writeConfig(forward(fb))
	c.writeConfig(forward(fc))
	a.start()
	b.start()
	c.start()

	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	download := func(port int, got *atomic.Int64) <-chan result {
		ch := make(chan result, 1)
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			ch <- result{err: err}
			return ch
		}
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		go func() {
			defer conn.Close()
			h := sha256.New()
			buf := make([]byte, 32<<10)
			var r result
			for {
				n, err := conn.Read(buf)
				h.Write(buf[:n])
				r.n += int64(n)
				got.Store(r.n)
				if err != nil {
					if !errors.Is(err, io.EOF) {
						r.err = err
					}
					break
				}
			}
			copy(r.sum[:], h.Sum(nil))
			ch <- r
		}()
		return ch
	}
	var gotB, gotC atomic.Int64
	doneB, doneC := download(fb, &gotB), download(fc, &gotC)
	waitFor(t, "both downloads under way", 20*time.Second, func() bool {
		return gotB.Load() > 0 && gotC.Load() > 0
	})

	out, stderr, code := a.ctlExit("trust", "rm", "b")
	removed := time.Now()
	if code != 0 {
		t.Fatalf("trust rm: exit %d: %s%s", code, out, stderr)
	}
	if !strings.Contains(out, "removed b; it was allowed to: slow, other") {
		t.Errorf("trust rm printed %q", out)
	}
	select {
	case r := <-doneB:
		if r.n == int64(len(payload)) && r.err == nil {
			t.Fatal("b's download completed: its stream was not closed")
		}
		if el := time.Since(removed); el > time.Second {
			t.Errorf("b's stream ended %v after trust rm, want within 1 s", el)
		}
		t.Logf("b's stream ended %v after trust rm, after %d bytes (%v)", time.Since(removed).Round(time.Millisecond), r.n, r.err)
	case <-time.After(time.Second):
		t.Fatal("b's stream was still open 1 s after trust rm")
	}
	waitFor(t, "no session with b on a", time.Second, func() bool {
		s, err := a.ctl("--json", "sessions")
		return err == nil && !strings.Contains(string(s), b.id)
	})
	r := <-doneC
	if want := sha256.Sum256(payload); r.err != nil || r.n != int64(len(payload)) || r.sum != want {
		t.Fatalf("c's download: %d of %d bytes, err %v, checksum match %v", r.n, len(payload), r.err, r.sum == want)
	}
	if st := a.peerState("b"); st != "absent" {
		t.Errorf("b is %q in a's peers after trust rm, want absent", st)
	}
	confAfter, _ := os.ReadFile(a.config())
	if !bytes.Equal(confBefore, confAfter) {
		t.Error("a's config file changed")
	}
	svcs, _ := a.ctl("--json", "services")
	if strings.Contains(string(svcs), `"b"`) {
		t.Errorf("b is still in an allow list: %s", svcs)
	}
	// b is refused from now on, and its attempts are pending again.
	waitFor(t, "b pending after its removal", 20*time.Second, func() bool {
		_, _, ok := pendingFor(t, a, b.id)
		return ok
	})
	if _, stderr, code := a.ctlExit("trust", "rm", "nobody"); code != 2 || !strings.Contains(stderr, `no trusted peer "nobody"; the trusted peers are`) {
		t.Errorf("trust rm of an unknown name: exit %d, %q", code, stderr)
	}
}
