package interop

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2pd/p2pd/internal/testnet"
)

// TestUnixForward: a forward on a Unix socket carries 1 MiB byte-exact to
// a peer's echo service; the socket is 0660 and `p2pctl forwards` lists it;
// the file a killed daemon leaves behind is replaced at the next start; a
// clean stop removes it.
func TestUnixForward(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	echo := testnet.NewEcho(t)
	b.writeConfig(a.peerTOML() + fmt.Sprintf("[[services]]\nname = \"echo\"\ntarget = %q\nallow = [\"a\"]\n", echo.Addr()))
	sock := filepath.Join(a.dir, "db.sock")
	a.writeConfig(b.peerTOML() + fmt.Sprintf("[[forwards]]\nlisten = %q\npeer = \"b\"\nservice = \"echo\"\n", "unix:"+sock))
	b.start()
	a.start()

	data := make([]byte, 1<<20)
	rand.Read(data)
	check := func(when string) {
		t.Helper()
		if got := echoVia(t, "unix", sock, data); sha(got) != sha(data) {
			t.Fatalf("%s: through unix:%s sent %d bytes, got %d that differ\n--- a's log:\n%s", when, sock, len(data), len(got), a.log)
		}
	}
	check("first start")
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("forward socket: %v, %v; want a socket with mode 0660", fi.Mode(), err)
	}
	out, err := a.ctl("--json", "forwards")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Forwards []struct{ Listen, Peer, Service string } `json:"forwards"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Forwards) != 1 || doc.Forwards[0].Listen != "unix:"+sock {
		t.Errorf("p2pctl --json forwards: %s (%v); want the one forward unix:%s", out, err, sock)
	}

	// A reload that drops the forward removes the file; one that brings it
	// back makes it again.
	withForward := b.peerTOML() + fmt.Sprintf("[[forwards]]\nlisten = %q\npeer = \"b\"\nservice = \"echo\"\n", "unix:"+sock)
	a.writeConfig(b.peerTOML())
	if out, err := a.ctl("reload"); err != nil {
		t.Fatalf("p2pctl reload: %v %s", err, out)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a reload without the forward, %s: %v; want it removed", sock, err)
	}
	a.writeConfig(withForward)
	if out, err := a.ctl("reload"); err != nil {
		t.Fatalf("p2pctl reload: %v %s", err, out)
	}
	check("after a reload that brought the forward back")

	// A crash leaves the socket file; the next start replaces it.
	a.kill()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("after SIGKILL the socket file should still be there (that is the stale case): %v", err)
	}
	a.start()
	check("after a crash and restart")

	// A clean stop removes it.
	if err := a.stop(); err != nil {
		t.Fatalf("p2pd stop: %v\n%s", err, a.log)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a clean stop, %s: %v; want it removed", sock, err)
	}
}
