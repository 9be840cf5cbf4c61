package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// socketDir is a fresh short directory for Unix sockets (t.TempDir can be
// longer than a socket path may be).
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "p2pd-fw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// unixEcho sends data through the Unix socket at path, half-closes and
// checks that exactly data comes back.
func unixEcho(t *testing.T, path string, data []byte) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("connect to %s: %v", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(failBound))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.UnixConn).CloseWrite()
		}
		werr <- err
	}()
	got, rerr := io.ReadAll(c)
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if rerr != nil {
		t.Fatalf("read after %d bytes: %v", len(got), rerr)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echo through %s: sent %d bytes, got %d that differ", path, len(data), len(got))
	}
}

func TestUnixForward(t *testing.T) {
	d := newEchoDialer(t)
	f := newForwarder(t, d)
	path := filepath.Join(socketDir(t), "db.sock")
	listen := "unix:" + path
	if err := f.Apply([]proxy.Forward{fwd(listen, "postgres")}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket file mode %v, want a socket with 0660", fi.Mode())
	}
	unixEcho(t, path, randomBytes(1<<20))
	if got := d.lastAsked(); got != "db/postgres" {
		t.Errorf("the forward dialed %q, want db/postgres", got)
	}
	stats := f.Stats()
	if len(stats) != 1 || stats[0].Listen != listen || stats[0].Total != 1 {
		t.Errorf("Stats() = %+v, want one forward %q with 1 connection", stats, listen)
	}
	if a := f.Addr(listen); a == nil || a.String() != path {
		t.Errorf("Addr(%q) = %v, want %s", listen, a, path)
	}

	// A reload that drops the forward removes its socket file.
	if err := f.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the forward was dropped, %s: %v; want it removed", path, err)
	}

	// So does Close.
	if err := f.Apply([]proxy.Forward{fwd(listen, "postgres")}); err != nil {
		t.Fatal(err)
	}
	f.Close(context.Background())
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, %s: %v; want it removed", path, err)
	}
}

func TestUnixForwardRemovesStaleSocket(t *testing.T) {
	path := filepath.Join(socketDir(t), "stale.sock")
	// A socket file whose listener died without removing it, as after a crash.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the stale socket still accepts connections")
	}
	f := newForwarder(t, newEchoDialer(t))
	if err := f.Apply([]proxy.Forward{fwd("unix:"+path, "echo")}); err != nil {
		t.Fatalf("Apply over a stale socket: %v", err)
	}
	unixEcho(t, path, []byte("after the stale socket"))
}

func TestUnixForwardRefusesLiveSocketAndFiles(t *testing.T) {
	dir := socketDir(t)
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			c.Close() // the forwarder's probe
		}
	}()
	regular := filepath.Join(dir, "data")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newForwarder(t, newEchoDialer(t))
	for _, tt := range []struct{ path, want string }{
		{live, "is a live socket"},
		{regular, "is a regular file, not a socket"},
		{dir, "is a directory, not a socket"},
	} {
		err := f.Apply([]proxy.Forward{fwd("unix:"+tt.path, "echo")})
		if err == nil || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) ||
			!strings.Contains(err.Error(), "forwards[0]") {
			t.Errorf("Apply(unix:%s) = %v; want an error naming forwards[0] and the path, saying %q", tt.path, err, tt.want)
		}
	}
	<-accepted
	if got, err := os.ReadFile(regular); err != nil || !bytes.Equal(got, []byte("keep me")) {
		t.Errorf("the regular file was touched: %q, %v", got, err)
	}
	// The live socket is still there and still its owner's.
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("mine"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", live)
	if err != nil {
		t.Fatalf("the live socket was removed: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(failBound))
	if got, _ := io.ReadAll(c); string(got) != "mine" {
		t.Errorf("the live socket answered %q, want its owner's %q", got, "mine")
	}
	if len(f.Stats()) != 0 {
		t.Errorf("failed Applies left forwards: %+v", f.Stats())
	}
}
