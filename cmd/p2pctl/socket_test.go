package main

import (
	"context"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/control"
)

// plantedServer serves the fixture on a socket at dir/p2pd.sock made with a
// plain net.Listen, as someone else's daemon (or a fake) would, and stops it
// when the test ends. A p2pctl that dials it gets a good answer.
func plantedServer(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "p2pd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(fixture(), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

// TestRefusesPlantedSocket: in a directory others can write to (as /tmp is
// for the fallback /tmp/p2pd-<uid>), p2pctl refuses a socket directory or
// socket that is not this user's, and never dials it.
func TestRefusesPlantedSocket(t *testing.T) {
	for _, c := range []struct {
		name  string
		root  bool
		plant func(t *testing.T, dir string) string // returns the socket path
		want  string
	}{
		{"directory owned by another user", true, func(t *testing.T, dir string) string {
			mustDo(t, os.Mkdir(dir, 0o700))
			path := plantedServer(t, dir)
			mustDo(t, os.Chown(path, 65534, 65534))
			mustDo(t, os.Chown(dir, 65534, 65534))
			return path
		}, "p2pctl: control: socket directory %DIR is owned by uid 65534, not by this user (uid 0), so another user made it first; remove it, or set XDG_RUNTIME_DIR or control_socket"},
		{"socket owned by another user", true, func(t *testing.T, dir string) string {
			mustDo(t, os.Mkdir(dir, 0o700))
			path := plantedServer(t, dir)
			mustDo(t, os.Chown(path, 65534, 65534))
			return path
		}, "p2pctl: control: socket %DIR/p2pd.sock is owned by uid 65534, not by this user (uid 0) or root"},
		{"directory readable by others", false, func(t *testing.T, dir string) string {
			mustDo(t, os.Mkdir(dir, 0o700))
			mustDo(t, os.Chmod(dir, 0o755))
			return plantedServer(t, dir)
		}, "p2pctl: control: socket directory %DIR has mode 0755, not 0700; fix with: chmod 700 %DIR"},
		{"directory is a symbolic link", false, func(t *testing.T, dir string) string {
			target, err := os.MkdirTemp("", "p2pd-target")
			mustDo(t, err)
			t.Cleanup(func() { os.RemoveAll(target) })
			plantedServer(t, target)
			mustDo(t, os.Symlink(target, dir))
			return filepath.Join(dir, "p2pd.sock")
		}, "p2pctl: control: socket directory %DIR is a symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Geteuid() != 0 {
				t.Skip("not root: cannot give a file to another user")
			}
			dir := filepath.Join(sharedDir(t), "p2pd-1000")
			path := c.plant(t, dir)
			code, out, errOut := p2pctl(t, "--socket", path, "status")
			want := strings.ReplaceAll(c.want, "%DIR", dir)
			if code != exitFailure || out != "" || !strings.HasPrefix(errOut, want) {
				t.Fatalf("p2pctl status on a planted socket: exit %d, stdout %q, stderr %q\nwant exit 1 and stderr starting %q", code, out, errOut, want)
			}
		})
	}
}

// TestTalksToOwnSocketInSharedDir: the daemon's own fallback directory passes.
func TestTalksToOwnSocketInSharedDir(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "p2pd-1000")
	mustDo(t, os.Mkdir(dir, 0o700))
	path := plantedServer(t, dir)
	rowsMatch(t, mustRun(t, "--socket", path, "status"), `alpha`)
}

// sharedDir returns a fresh directory that everyone may write to, with the
// sticky bit, as /tmp is.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "p2pd-shared")
	mustDo(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	mustDo(t, os.Chmod(dir, 0o777|fs.ModeSticky))
	return dir
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
