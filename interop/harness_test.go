package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
)

// bins holds the built p2pd and p2pctl, made once by TestMain.
var bins struct{ p2pd, p2pctl string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p2pd-interop-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // other users run p2pctl in the permission test
	bins.p2pd = filepath.Join(dir, "p2pd")
	bins.p2pctl = filepath.Join(dir, "p2pctl")
	for out, pkg := range map[string]string{bins.p2pd: "../cmd/p2pd", bins.p2pctl: "../cmd/p2pctl"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testNode is one p2pd in its own directory, driven through its binary.
type testNode struct {
	t    *testing.T
	name string
	dir  string
	port int // UDP
	id   string
	// netns, listen and discovery are for nodes in network namespaces.
	netns     string
	listen    string // default 127.0.0.1:port
	discovery string // the [discovery] table's body; default: everything off
	cmd       *exec.Cmd
	log       *bytes.Buffer
	exit      chan error
}

// portsGiven are the port numbers freePort handed out in this test
// process, of either protocol: a port closed after the pick may come back
// from the next pick, and a node's UDP port number is also its TCP
// carrier's, so no number is handed out twice.
var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freePort returns a loopback port number of network ("tcp" or "udp") that
// is free now and was not handed out before; for "udp" the TCP port of the
// same number is free too (a daemon listens on both).
func freePort(t *testing.T, network string) int {
	t.Helper()
	for range 100 {
		p, err := pickPort(network)
		if err != nil {
			t.Fatal(err)
		}
		if network == "udp" {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
				continue
			} else {
				l.Close()
			}
		}
		portsMu.Lock()
		given := portsGiven[p]
		portsGiven[p] = true
		portsMu.Unlock()
		if !given {
			return p
		}
	}
	t.Fatalf("no free %s port in 100 picks", network)
	return 0
}

func pickPort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newNode makes a node directory, writes a minimal config and runs `p2pd init`.
func newNode(t *testing.T, name string) *testNode {
	t.Helper()
	n := &testNode{t: t, name: name, dir: filepath.Join(t.TempDir(), name), port: freePort(t, "udp")}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n.writeConfig("")
	out, err := exec.Command(bins.p2pd, "init", "--config", n.config(), "--name", name).CombinedOutput()
	if err != nil {
		t.Fatalf("p2pd init %s: %v\n%s", name, err, out)
	}
	id, err := exec.Command(bins.p2pd, "id", "--config", n.config()).Output()
	if err != nil {
		t.Fatalf("p2pd id %s: %v", name, err)
	}
	n.id = strings.TrimSpace(string(id))
	if !strings.HasPrefix(n.id, "12D3KooW") {
		t.Fatalf("p2pd id printed %q, want a 12D3KooW... peer ID", n.id)
	}
	return n
}

func (n *testNode) config() string { return filepath.Join(n.dir, "p2pd.toml") }
func (n *testNode) socket() string { return filepath.Join(n.dir, "p2pd.sock") }

// writeConfig writes the node's whole config; extra holds its peers, services and forwards.
func (n *testNode) writeConfig(extra string) {
	n.t.Helper()
	listen := n.listen
	if listen == "" {
		listen = fmt.Sprintf("127.0.0.1:%d", n.port)
	}
	disc := n.discovery
	if disc == "" {
		disc = "mdns = false\ndht = false"
	}
	cfg := fmt.Sprintf(`[node]
name = %q
key_file = "identity.key"
listen = [%q]
control_socket = "p2pd.sock"

[discovery]
%s

[log]
level = "debug"

%s
`, n.name, listen, disc, extra)
	if err := os.WriteFile(n.config(), []byte(cfg), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

// peerTOML is a [[peers]] entry for n with its static address.
func (n *testNode) peerTOML() string {
	return fmt.Sprintf("[[peers]]\nname = %q\nid = %q\naddresses = [\"127.0.0.1:%d\"]\n\n", n.name, n.id, n.port)
}

// alwaysOnTOML is n's [[peers]] entry with always_on = true: the node that
// lists it keeps dialing n without being asked.
func (n *testNode) alwaysOnTOML() string {
	return strings.TrimSuffix(n.peerTOML(), "\n") + "always_on = true\n\n"
}

// start runs `p2pd run` and waits for the control socket to answer.
func (n *testNode) start() {
	n.t.Helper()
	n.log = new(bytes.Buffer)
	n.cmd = exec.Command(bins.p2pd, "run", "--config", n.config())
	if n.netns != "" {
		n.cmd = exec.Command("ip", "netns", "exec", n.netns, bins.p2pd, "run", "--config", n.config())
	}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exit = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(n.cmd, n.exit)
	n.t.Cleanup(n.kill)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := n.ctl("status"); err == nil {
			return
		}
		select {
		case err := <-n.exit:
			n.exit <- err
			n.t.Fatalf("p2pd %s exited: %v\n%s", n.name, err, n.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	n.t.Fatalf("p2pd %s: control socket did not answer in 15 s\n%s", n.name, n.log)
}

// kill ends the daemon with SIGKILL, as a crash would.
func (n *testNode) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exit
	n.exit <- nil
	n.cmd = nil
}

// stop sends SIGTERM and returns the exit error.
func (n *testNode) stop() error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.exit:
		n.exit <- err
		n.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		n.t.Fatalf("p2pd %s did not exit 20 s after SIGTERM\n%s", n.name, n.log)
		return nil
	}
}

func (n *testNode) ctl(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, bins.p2pctl, append([]string{"--socket", n.socket()}, args...)...).Output()
}

// peerState is the state word `p2pctl --json peers` gives for peer.
func (n *testNode) peerState(peer string) string {
	out, err := n.ctl("--json", "peers")
	if err != nil {
		return "error: " + err.Error()
	}
	var doc struct {
		Peers []struct {
			Name, ID, State string
			Addresses       []string
		} `json:"peers"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return "unparsable: " + string(out)
	}
	for _, p := range doc.Peers {
		if p.Name == peer || p.ID == peer {
			return p.State
		}
	}
	return "absent"
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// echoForwardPair starts b, serving echo (an echo server) to a, and a, with
// a forward to it on loopback, and returns both and the forward's address.
func echoForwardPair(t *testing.T) (a, b *testNode, addr string) {
	t.Helper()
	echo := testnet.NewEcho(t)
	a, b = newNode(t, "a"), newNode(t, "b")
	fwd := freePort(t, "tcp")
	b.writeConfig(a.peerTOML() + fmt.Sprintf("[[services]]\nname = \"echo\"\ntarget = %q\nallow = [\"a\"]\n", echo.Addr()))
	a.writeConfig(b.peerTOML() + fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = \"echo\"\n", fwd))
	b.start()
	a.start()
	return a, b, fmt.Sprintf("127.0.0.1:%d", fwd)
}
