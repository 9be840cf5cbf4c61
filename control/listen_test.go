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

// sharedDir returns a fresh directory that everyone may write to, with the
// sticky bit, as /tmp is: the parent of the fallback socket directory.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "p2pd-shared")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestListenCreatesPrivateDirInSharedDir(t *testing.T) {
	old := setUmask(0)
	defer setUmask(old)
	dir := filepath.Join(sharedDir(t), "p2pd-1000")
	path := filepath.Join(dir, "p2pd.sock")
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created %s as %v, want a directory with mode 0700", dir, fi.Mode())
	}
	if err := control.CheckSocket(path); err != nil {
		t.Fatalf("CheckSocket on the daemon's own socket: %v", err)
	}
	// Made again by the next daemon: accepted as it is.
	ln.Close()
	ln2, err := control.Listen(path)
	if err != nil {
		t.Fatalf("Listen in the directory it made before: %v", err)
	}
	ln2.Close()
}

// TestListenRefusesPlantedDir covers the fallback directory (/tmp/p2pd-<uid>)
// found already there: the daemon must not start and a client must not dial.
func TestListenRefusesPlantedDir(t *testing.T) {
	cases := []struct {
		name  string
		root  bool                           // needs root to set up
		plant func(t *testing.T, dir string) // makes dir
		want  string                         // after "control: socket directory <dir> "
	}{
		{"made 0755 by us", false, func(t *testing.T, dir string) {
			mustOK(t, os.Mkdir(dir, 0o700))
			mustOK(t, os.Chmod(dir, 0o755))
		}, "has mode 0755, not 0700; fix with: chmod 700 "},
		{"made 0770 by us", false, func(t *testing.T, dir string) {
			mustOK(t, os.Mkdir(dir, 0o700))
			mustOK(t, os.Chmod(dir, 0o770))
		}, "has mode 0770, not 0700"},
		{"a symbolic link to a directory of ours", false, func(t *testing.T, dir string) {
			target := t.TempDir()
			mustOK(t, os.Chmod(target, 0o700))
			mustOK(t, os.Symlink(target, dir))
		}, "is a symbolic link, which p2pd does not follow in "},
		{"a regular file", false, func(t *testing.T, dir string) {
			mustOK(t, os.WriteFile(dir, nil, 0o600))
		}, "is not a directory"},
		{"owned by another user", true, func(t *testing.T, dir string) {
			mustOK(t, os.Mkdir(dir, 0o700))
			mustOK(t, os.Chown(dir, 65534, 65534))
		}, "is owned by uid 65534, not by this user (uid 0), so another user made it first"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Geteuid() != 0 {
				t.Skip("not root: cannot give the directory to another user")
			}
			dir := filepath.Join(sharedDir(t), "p2pd-1000")
			c.plant(t, dir)
			path := filepath.Join(dir, "p2pd.sock")
			ln, err := control.Listen(path)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen in a planted directory (%s) succeeded", c.name)
			}
			prefix := "control: socket directory " + dir + " " + c.want
			fix := "remove it, or set XDG_RUNTIME_DIR or control_socket"
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), fix) {
				t.Fatalf("Listen err = %v\nwant one starting %q and saying %q", err, prefix, fix)
			}
			if _, err := os.Stat(path); err == nil {
				t.Fatalf("a socket was made at %s after all", path)
			}
			// A client applies the same rule before dialing.
			if cerr := control.CheckSocket(path); cerr == nil || cerr.Error() != err.Error() {
				t.Fatalf("CheckSocket err = %v, want %v", cerr, err)
			}
		})
	}
}

func TestCheckSocketOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot give a socket to another user")
	}
	dir := filepath.Join(sharedDir(t), "p2pd-1000")
	mustOK(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "p2pd.sock")
	if err := control.CheckSocket(path); err != nil {
		t.Fatalf("CheckSocket with no socket yet: %v", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := control.CheckSocket(path); err != nil {
		t.Fatalf("CheckSocket on our own socket: %v", err)
	}
	mustOK(t, os.Chown(path, 65534, 65534))
	err = control.CheckSocket(path)
	want := "control: socket " + path + " is owned by uid 65534, not by this user (uid 0) or root, so it is not this user's p2pd; remove it"
	if err == nil || err.Error() != want {
		t.Fatalf("CheckSocket(socket of uid 65534) err = %v\nwant  %s", err, want)
	}
}

// TestCheckSocketElsewhere: outside a shared directory the daemon's checks
// at Listen and the socket's 0600 mode do the work, and a client adds none.
func TestCheckSocketElsewhere(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	mustOK(t, os.Mkdir(dir, 0o755))
	if err := control.CheckSocket(filepath.Join(dir, "p2pd.sock")); err != nil {
		t.Fatalf("CheckSocket outside a shared directory: %v", err)
	}
	if err := control.CheckSocket(filepath.Join(sharedDir(t), "p2pd-1000", "p2pd.sock")); err != nil {
		t.Fatalf("CheckSocket with no directory yet: %v", err)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
