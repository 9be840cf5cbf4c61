package interop

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
)

// httpBackend is an unmodified Python HTTP server on loopback serving dir.
type httpBackend struct {
	port int
	log  string
}

func startHTTPBackend(t *testing.T, dir string) *httpBackend {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is needed for the HTTP backend (install it; .ci/run does)")
	}
	b := &httpBackend{port: freePort(t, "tcp"), log: filepath.Join(t.TempDir(), "http.log")}
	logf, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-m", "http.server", "--bind", "127.0.0.1", fmt.Sprint(b.port), "--directory", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	waitFor(t, "python http.server", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return b
}

func (b *httpBackend) requests(t *testing.T) int {
	data, err := os.ReadFile(b.log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\"GET ")
}

// curl fetches url with an unmodified curl into a file and returns its bytes.
func curl(t *testing.T, url string) ([]byte, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (install it; .ci/run does)")
	}
	out := filepath.Join(t.TempDir(), "got")
	cmd := exec.Command("curl", "-sS", "-f", "--max-time", "60", "-o", out, url)
	msg, err := cmd.CombinedOutput()
	got, _ := os.ReadFile(out)
	if err != nil {
		return got, fmt.Errorf("curl %s: %v: %s", url, err, msg)
	}
	return got, nil
}

// halfCloseBackend reads its client to EOF, then answers with the SHA-256
// of what it read followed by answerLen bytes of answer, then closes.
func halfCloseBackend(t *testing.T, answer []byte) int {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		c.Write(h.Sum(nil))
		c.Write(answer)
	}).Port
}

// halfCloseExchange sends n random bytes to addr, half-closes, and checks
// that the answer is their SHA-256 followed by answer (halfCloseBackend).
func halfCloseExchange(addr string, n int, answer []byte) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	sent := make([]byte, n)
	rand.Read(sent)
	if _, err := conn.Write(sent); err != nil {
		return err
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		return fmt.Errorf("reading the answer after our half-close: %w", err)
	}
	want := sha256.Sum256(sent)
	if len(got) != sha256.Size+len(answer) || !bytes.Equal(got[:sha256.Size], want[:]) || !bytes.Equal(got[sha256.Size:], answer) {
		return fmt.Errorf("answer of %d bytes does not match (want %d: the digest of what we sent, then the answer)", len(got), sha256.Size+len(answer))
	}
	return nil
}

// TestOverlayEndToEnd runs the core overlay with real daemons and curl,
// over each carrier: a's and the untrusted c's peer entries for b set to
// "auto" (QUIC on loopback) or "tcp".
func TestOverlayEndToEnd(t *testing.T) {
	for _, transport := range faultCarriers {
		t.Run(transport, func(t *testing.T) { overlayEndToEnd(t, transport) })
	}
}

func overlayEndToEnd(t *testing.T, transport string) {
	a, b, c := newNode(t, "a"), newNode(t, "b"), newNode(t, "c")
	www := t.TempDir()
	blob := make([]byte, 32<<20)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(www, "blob"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	web := startHTTPBackend(t, www)
	answer := make([]byte, 4<<20)
	rand.Read(answer)
	half := halfCloseBackend(t, answer)
	fa, fa2, fh, fc := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")

	b.writeConfig(a.peerTOML() + fmt.Sprintf(`
[[services]]
name = "files"
target = "127.0.0.1:%d"
allow = ["a"]

[[services]]
name = "secret"
target = "127.0.0.1:%d"
allow = []

[[services]]
name = "halfclose"
target = "127.0.0.1:%d"
allow = ["*"]
`, web.port, web.port, half))
	a.writeConfig(b.peerTOML() + fmt.Sprintf("transport = %q\n", transport) + fmt.Sprintf(`
[[forwards]]
listen = "127.0.0.1:%d"
peer = "b"
service = "files"

[[forwards]]
listen = "127.0.0.1:%d"
peer = "b"
service = "secret"

[[forwards]]
listen = "%d"
peer = "b"
service = "halfclose"
`, fa, fa2, fh))
	c.writeConfig(b.peerTOML() + fmt.Sprintf("transport = %q\n", transport) + fmt.Sprintf(`
[[forwards]]
listen = "127.0.0.1:%d"
peer = "b"
service = "files"
`, fc))
	b.start()
	a.start()
	c.start()

	url := fmt.Sprintf("http://127.0.0.1:%d/blob", fa)
	t.Run("curl 32 MiB byte-exact", func(t *testing.T) {
		got, err := curl(t, url)
		if err != nil {
			t.Fatalf("%v\n--- a's log:\n%s", err, a.log)
		}
		if sha(got) != sha(blob) {
			t.Fatalf("got %d bytes with sha %s, want %d bytes with sha %s", len(got), sha(got), len(blob), sha(blob))
		}
	})
	t.Run("p2pctl shows b connected", func(t *testing.T) {
		if st := a.peerState("b"); st != "connected" {
			t.Fatalf("a's state of b = %q, want connected", st)
		}
		out, err := a.ctl("--json", "sessions")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out, []byte(b.id)) {
			t.Fatalf("sessions do not mention b (%s): %s", b.id, out)
		}
		if out, err := a.ctl("ping", "b"); err != nil {
			t.Fatalf("p2pctl ping b: %v: %s", err, out)
		}
		wantCarrier(t, a, "b", transport)
	})
	before := web.requests(t)
	t.Run("untrusted node gets nothing", func(t *testing.T) {
		got, err := curl(t, fmt.Sprintf("http://127.0.0.1:%d/blob", fc))
		if err == nil || len(got) != 0 {
			t.Fatalf("untrusted c got %d bytes (err %v)", len(got), err)
		}
		if st := c.peerState("b"); st == "connected" {
			t.Fatalf("c reports b as connected")
		}
	})
	t.Run("service outside allow list gets nothing", func(t *testing.T) {
		got, err := curl(t, fmt.Sprintf("http://127.0.0.1:%d/blob", fa2))
		if err == nil || len(got) != 0 {
			t.Fatalf("a got %d bytes of a service that allows nobody (err %v)", len(got), err)
		}
	})
	if after := web.requests(t); after != before {
		t.Fatalf("the backend saw %d requests it should never have seen", after-before)
	}
	t.Run("half-close carried both ways", func(t *testing.T) {
		if err := halfCloseExchange(fmt.Sprintf("127.0.0.1:%d", fh), 1<<20, answer); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("50 parallel connections of 1 MiB each", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- halfCloseExchange(fmt.Sprintf("127.0.0.1:%d", fh), 1<<20, answer)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("b killed and restarted is reached again", func(t *testing.T) {
		b.kill()
		b.start()
		var got []byte
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if got, err = curl(t, url); err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("a's forward never reached the restarted b: %v\n--- a's log:\n%s", err, a.log)
		}
		if sha(got) != sha(blob) {
			t.Fatalf("download after restart is not byte-exact")
		}
	})
	t.Run("SIGTERM exits 0", func(t *testing.T) {
		if err := a.stop(); err != nil {
			t.Fatalf("p2pd a exited with %v after SIGTERM\n%s", err, a.log)
		}
	})
}

func TestP2pctlWithoutDaemon(t *testing.T) {
	cmd := exec.Command(bins.p2pctl, "--socket", filepath.Join(t.TempDir(), "none.sock"), "status")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("p2pctl without a daemon: err %v, want exit code 1", err)
	}
	if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n") + 1; lines != 1 || !strings.Contains(stderr.String(), "running") {
		t.Fatalf("want one line saying no daemon is running, got %q", stderr.String())
	}
}

func TestKeyFileReadableByOthersRefused(t *testing.T) {
	n := newNode(t, "k")
	key := filepath.Join(n.dir, "identity.key")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bins.p2pd, "run", "--config", n.config()).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("p2pd ran with a key readable by others: %v", err)
	}
	if !strings.Contains(string(out), "chmod 600") || !strings.Contains(string(out), key) {
		t.Fatalf("error should name the file and the fix, got: %s", out)
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	n := newNode(t, "x")
	n.writeConfig("[[peers]]\nname = \"y\"\nid = \"12D3KooWnotanid\"\nadress = [\"127.0.0.1:1\"]\n")
	out, err := exec.Command(bins.p2pd, "run", "--config", n.config()).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("p2pd with a bad config: %v, want exit code 2; output: %s", err, out)
	}
	for _, want := range []string{"adress", "12D3KooWnotanid"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error output does not name %q: %s", want, out)
		}
	}
}

func TestControlSocketPermissions(t *testing.T) {
	n := newNode(t, "s")
	n.start()
	fi, err := os.Stat(n.socket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, want a socket with 0600", fi.Mode())
	}
	if os.Geteuid() != 0 {
		t.Skip("the unprivileged-connect half needs root to switch users")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is needed to connect as another user")
	}
	// Make the path reachable so that only the socket itself can refuse.
	for d := n.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bins.p2pctl, "--socket", n.socket(), "status").CombinedOutput()
	if err == nil {
		t.Fatalf("user nobody got an answer from the control socket: %s", out)
	}
	if !strings.Contains(string(out), "permission denied") {
		t.Fatalf("want the connection refused with permission denied, got: %s", out)
	}
}
