package control_test

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

func TestListenSocketMode(t *testing.T) {
	old := setUmask(0) // the socket must be 0600 even under a permissive umask
	defer setUmask(old)
	path := filepath.Join(filepath.Dir(controltest.SocketPath(t)), "sub", "p2pd.sock")
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("created parent dir mode = %v, want 0700", di.Mode().Perm())
	}
}

func TestListenCloseRemovesSocket(t *testing.T) {
	path := controltest.SocketPath(t)
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket still there after Close: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestListenCloseKeepsSuccessorsSocket(t *testing.T) {
	path := controltest.SocketPath(t)
	ln1, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// Someone removes our socket and a new daemon takes the path.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	ln2, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	ln1.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("closing the old listener removed the new socket: %v", err)
	}
}

func TestListenStaleSocketTakeover(t *testing.T) {
	path := controltest.SocketPath(t)
	// A crashed daemon leaves its socket file behind: bound, nobody listening.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	ln, err := control.Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dialing the new socket: %v", err)
	}
	c.Close()
}

func TestListenLiveSocketRefused(t *testing.T) {
	path := controltest.SocketPath(t)
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() { // answer the probe
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-accepted }()
	_, err = control.Listen(path)
	want := "control: another p2pd is running on " + path
	if err == nil || err.Error() != want {
		t.Fatalf("second Listen: err = %v, want %q", err, want)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("second Listen removed the live socket: %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := controltest.SocketPath(t)
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := control.Listen(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a regular file: err = %v, want one naming %s as not a socket", err, path)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Fatalf("file changed: %q, %v", b, err)
	}
}

func TestListenPathTooLong(t *testing.T) {
	path := "/tmp/" + strings.Repeat("x", 200) + "/p2pd.sock"
	_, err := control.Listen(path)
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Listen on a 200-byte path: err = %v, want a too-long error", err)
	}
}

func TestListenRefusesUnsafeDir(t *testing.T) {
	dir := filepath.Join(filepath.Dir(controltest.SocketPath(t)), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := control.Listen(filepath.Join(dir, "p2pd.sock"))
	if err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("Listen in a 0777 dir: err = %v, want a refusal", err)
	}
	if os.Getuid() != 0 {
		t.Skip("not root: cannot give the directory to another user")
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = control.Listen(filepath.Join(dir, "p2pd.sock"))
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("Listen in another user's dir: err = %v, want a refusal", err)
	}
}
