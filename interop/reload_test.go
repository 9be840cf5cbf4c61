package interop

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestReload drives a reload from outside: a broken config changes nothing
// and says why; a config that takes a away from a service's allow list
// stops a at once; SIGHUP brings a back.
func TestReload(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	dir, sum := blobDir(t, 1<<20)
	web := startHTTPBackend(t, dir)
	fa := freePort(t, "tcp")
	service := func(allow string) string {
		return a.peerTOML() + fmt.Sprintf("[[services]]\nname = \"files\"\ntarget = \"127.0.0.1:%d\"\nallow = [%s]\n", web.port, allow)
	}
	b.writeConfig(service(`"a"`))
	a.writeConfig(b.peerTOML() + fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = \"files\"\n", fa))
	b.start()
	a.start()
	url := fmt.Sprintf("http://127.0.0.1:%d/blob", fa)
	fetch := func() (string, error) {
		got, err := curl(t, url)
		return sha(got), err
	}
	if got, err := fetch(); err != nil || got != sum {
		t.Fatalf("before any reload: %v", err)
	}

	good, _ := os.ReadFile(b.config())
	os.WriteFile(b.config(), append(append([]byte{}, good...), "\n[[services]\nname = 1\n"...), 0o600)
	out, err := b.ctl("reload")
	if err == nil {
		t.Fatalf("reload of a broken config succeeded: %s", out)
	}
	if got, err := fetch(); err != nil || got != sum {
		t.Fatalf("after a failed reload the service changed: %v", err)
	}

	b.writeConfig(service(""))
	if out, err := b.ctl("reload"); err != nil {
		t.Fatalf("p2pctl reload: %v: %s", err, out)
	}
	if got, err := curl(t, url); err == nil || len(got) != 0 {
		t.Fatalf("a still got %d bytes after losing access (err %v)", len(got), err)
	}

	b.writeConfig(service(`"*"`))
	b.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "access back after SIGHUP", 10*time.Second, func() bool {
		got, err := fetch()
		return err == nil && got == sum
	})
}
