package interop

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
)

// failFastBound is what this test allows for what p2pd promises within
// about a second (a refusal of a connection to a peer known to be down);
// the times taken are logged.
const failFastBound = 3 * time.Second

// forwardErrors returns the per-kind error counts of n's forward on port,
// from p2pctl --json forwards.
func forwardErrors(t *testing.T, n *testNode, port int) map[string]uint64 {
	t.Helper()
	var doc struct {
		Forwards []struct {
			Listen string            `json:"listen"`
			Errors map[string]uint64 `json:"errors"`
		} `json:"forwards"`
	}
	if out, err := ctlJSON(t, n, "forwards", &doc); err != nil {
		t.Fatalf("p2pctl --json forwards: %v: %s", err, out)
	}
	for _, f := range doc.Forwards {
		if f.Listen == fmt.Sprintf("127.0.0.1:%d", port) {
			return f.Errors
		}
	}
	t.Fatalf("p2pctl forwards has no forward on port %d", port)
	return nil
}

// hasSession reports whether n's p2pctl --json sessions lists the peer id.
func hasSession(t *testing.T, n *testNode, id string) bool {
	t.Helper()
	var doc struct {
		Sessions []struct {
			PeerID string `json:"peer_id"`
		} `json:"sessions"`
	}
	if out, err := ctlJSON(t, n, "sessions", &doc); err != nil {
		t.Fatalf("p2pctl --json sessions: %v: %s", err, out)
	}
	for _, s := range doc.Sessions {
		if s.PeerID == id {
			return true
		}
	}
	return false
}

// TestFailFastPeerKilled (issue 11): the far daemon is killed with SIGKILL.
// The client's daemon notices within the idle timeout (the session goes
// from p2pctl sessions); then a connection through its forward is refused
// within about a second, the reason is in its log and in p2pctl forwards,
// and p2pctl ping says why in a sentence. After the far daemon restarts a
// connection works byte-exact. A connection the far side refuses (access
// denied) is logged on the client's daemon too.
func TestFailFastPeerKilled(t *testing.T) {
	echo := testnet.NewEcho(t)
	a, b := newNode(t, "a"), newNode(t, "b")
	fecho, fsecret := freePort(t, "tcp"), freePort(t, "tcp")
	b.writeConfig(a.peerTOML() + fmt.Sprintf("[[services]]\nname = \"echo\"\ntarget = %q\nallow = [\"a\"]\n\n"+
		"[[services]]\nname = \"secret\"\ntarget = %q\nallow = []\n", echo.Addr(), echo.Addr()))
	a.writeConfig(b.peerTOML() + fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = \"echo\"\n\n"+
		"[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = \"secret\"\n", fecho, fsecret))
	b.start()
	a.start()
	echoAddr := fmt.Sprintf("127.0.0.1:%d", fecho)
	data := make([]byte, 256<<10)
	rand.Read(data)
	waitFor(t, "a connection through the forward", 15*time.Second, func() bool { return echoThrough(echoAddr, data) == nil })

	// Refused by the far side: the client sees the connection fail, and
	// its own daemon says why.
	if err := echoThrough(fmt.Sprintf("127.0.0.1:%d", fsecret), []byte("let me in")); err == nil {
		t.Fatal("a connection to a service that does not allow a went through")
	}
	waitFor(t, "a's log line for the denied connection", 5*time.Second, func() bool {
		return strings.Contains(a.log.String(), `level=INFO msg="forward: connection refused" listen=`+fmt.Sprintf("127.0.0.1:%d", fsecret)+` peer=b service=secret reason=access_denied`)
	})
	if got := forwardErrors(t, a, fsecret)["access_denied"]; got != 1 {
		t.Fatalf("p2pctl forwards counts %d access_denied errors on the secret forward, want 1", got)
	}

	b.kill()
	killed := time.Now()
	waitFor(t, "a to drop its session with the killed b", 10*time.Second, func() bool { return !hasSession(t, a, b.id) })
	t.Logf("a noticed the crash %v after the kill", time.Since(killed).Round(100*time.Millisecond))

	for i := range 3 {
		start := time.Now()
		err := echoThrough(echoAddr, []byte("anyone there?"))
		took := time.Since(start)
		if err == nil {
			t.Fatal("a connection to the killed b went through")
		}
		if took > failFastBound {
			t.Fatalf("connection %d to the killed b failed after %v, want within %v: %v", i, took, failFastBound, err)
		}
		t.Logf("connection %d refused after %v (%v)", i, took.Round(time.Millisecond), err)
	}
	line := `level=INFO msg="forward: connection refused" listen=` + echoAddr + ` peer=b service=echo reason=peer_unreachable err="peer b (12D3KooW…`
	waitFor(t, "a's log line for the refused connection", 5*time.Second, func() bool { return strings.Contains(a.log.String(), line) })
	if n := strings.Count(a.log.String(), `service=echo reason=peer_unreachable`); n != 1 {
		t.Fatalf("a logged %d lines for 3 refusals within a few seconds, want 1 (rate-limited)", n)
	}
	if got := forwardErrors(t, a, fecho)["peer_unreachable"]; got != 3 {
		t.Fatalf("p2pctl forwards counts %d peer_unreachable errors, want 3", got)
	}

	start := time.Now()
	out, err := exec.Command(bins.p2pctl, "--socket", a.socket(), "ping", "b").CombinedOutput()
	took := time.Since(start)
	if err == nil || took > failFastBound || !strings.HasPrefix(string(out), "p2pctl: peer b (12D3KooW…") ||
		!strings.Contains(string(out), "unreachable: ") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("p2pctl ping b after %v: %v: %q; want one line naming b and why within %v", took, err, out, failFastBound)
	}
	t.Logf("p2pctl ping answered after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(string(out)))

	b.start()
	restarted := time.Now()
	waitFor(t, "a connection through the restarted b", 15*time.Second, func() bool { return echoThrough(echoAddr, data) == nil })
	t.Logf("a connection worked %v after the restart", time.Since(restarted).Round(100*time.Millisecond))

	// Killed again, and a connection comes at once, before anything
	// noticed: the silent session is probed and the connection fails
	// within about a second, not at the idle timeout.
	b.kill()
	start = time.Now()
	err = echoThrough(echoAddr, []byte("still there?"))
	took = time.Since(start)
	if err == nil || took > failFastBound {
		t.Fatalf("a connection right after the second kill: %v after %v; want a failure within %v", err, took, failFastBound)
	}
	t.Logf("a connection right after the kill failed after %v", took.Round(time.Millisecond))
	waitFor(t, "a's log line for the closed silent session", 5*time.Second, func() bool {
		return strings.Contains(a.log.String(), `level=INFO msg="closing a session that stopped answering" peer=b`)
	})
	b.start()
	waitFor(t, "a connection through b, restarted again", 15*time.Second, func() bool { return echoThrough(echoAddr, data) == nil })

	var peers struct {
		Peers []struct {
			Name    string   `json:"name"`
			Sources []string `json:"sources"`
		} `json:"peers"`
	}
	if out, err := ctlJSON(t, a, "peers", &peers); err != nil {
		t.Fatalf("p2pctl --json peers: %v: %s", err, out)
	}
	if len(peers.Peers) != 1 || strings.Join(peers.Peers[0].Sources, ",") != "static" {
		raw, _ := json.Marshal(peers)
		t.Fatalf("p2pctl peers: %s; want b found by its static address only", raw)
	}
}

// TestPingUnreachableSentence: p2pctl ping to a peer that never answered
// replies within about a second of its timeout with a sentence that names
// the peer, the addresses tried and why, not a context error; the next
// ping, once the dial has failed, answers at once.
func TestPingUnreachableSentence(t *testing.T) {
	a, ghost := newNode(t, "a"), newNode(t, "ghost") // ghost never runs
	a.writeConfig(ghost.peerTOML())
	a.start()
	start := time.Now()
	out, err := exec.Command(bins.p2pctl, "--socket", a.socket(), "ping", "ghost").CombinedOutput()
	took := time.Since(start)
	want := fmt.Sprintf("p2pctl: peer ghost (12D3KooW…%s): unreachable: no address answered", ghost.id[len(ghost.id)-6:])
	if err == nil || took > 12*time.Second || !strings.HasPrefix(string(out), want) || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("p2pctl ping ghost after %v: %v: %q; want one line starting %q within 12 s", took, err, out, want)
	}
	t.Logf("first ping answered after %v: %s", took.Round(100*time.Millisecond), strings.TrimSpace(string(out)))
	waitFor(t, "the dial to ghost to fail", 15*time.Second, func() bool {
		out, _ := a.ctl("peers")
		return strings.Contains(string(out), "tried 1: 127.0.0.1:")
	})
	start = time.Now()
	out, _ = exec.Command(bins.p2pctl, "--socket", a.socket(), "ping", "ghost").CombinedOutput()
	if took := time.Since(start); took > failFastBound || !strings.Contains(string(out), fmt.Sprintf("(tried 1: 127.0.0.1:%d: ", ghost.port)) {
		t.Fatalf("second p2pctl ping ghost after %v: %q; want the addresses tried within %v", took, out, failFastBound)
	}
	t.Logf("second ping answered after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
}
