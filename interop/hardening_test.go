package interop

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// runRefused runs `p2pd run` on n's config with extra environment and
// returns its exit code and output. A p2pd still running after 10 s is
// killed and fails the test: every refusal here must come at start-up.
func runRefused(t *testing.T, n *testNode, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.p2pd, "run", "--config", n.config())
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("p2pd was still running after 10 s; output:\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("p2pd run: %v, want a refusal; output:\n%s", err, out)
	}
	return ee.ExitCode(), string(out)
}

// TestKeyFileHardening starts the real daemon on key files it must refuse:
// each time it exits at once with 2, a configuration error, as a key readable
// by others does,
// and says what is wrong.
func TestKeyFileHardening(t *testing.T) {
	n := newNode(t, "k")
	key := filepath.Join(n.dir, "identity.key")
	good, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	modeCode, out := runRefused(t, n)
	if modeCode != 2 || !strings.Contains(out, "chmod 600 "+key) {
		t.Fatalf("key readable by others: exit %d, output %s; want exit 2 (a configuration error)", modeCode, out)
	}

	t.Run("named pipe", func(t *testing.T) {
		os.Remove(key)
		if err := syscall.Mkfifo(key, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := runRefused(t, n)
		if want := "key file " + key + " is a named pipe, not a regular file"; code != modeCode || !strings.Contains(out, want) {
			t.Fatalf("exit %d, output %s\nwant exit %d and %q", code, out, modeCode, want)
		}
	})
	t.Run("symbolic link to a valid key", func(t *testing.T) {
		real := filepath.Join(t.TempDir(), "real.key")
		if err := os.WriteFile(real, good, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(key)
		if err := os.Symlink(real, key); err != nil {
			t.Fatal(err)
		}
		code, out := runRefused(t, n)
		if want := "key file " + key + " is a symbolic link; p2pd does not follow links for its key"; code != modeCode || !strings.Contains(out, want) {
			t.Fatalf("exit %d, output %s\nwant exit %d and %q", code, out, modeCode, want)
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("not root: cannot give the key to another user")
		}
		os.Remove(key)
		if err := os.WriteFile(key, good, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(key, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		code, out := runRefused(t, n)
		if want := "key file " + key + " is owned by uid 65534, not by this process (uid 0); fix with: chown 0 " + key; code != modeCode || !strings.Contains(out, want) {
			t.Fatalf("exit %d, output %s\nwant exit %d and %q", code, out, modeCode, want)
		}
	})
}

// TestDaemonRefusesPlantedSocketDir points the control socket into a
// directory made 0755 inside a directory everyone can write to, as a
// pre-created /tmp/p2pd-<uid> would be.
func TestDaemonRefusesPlantedSocketDir(t *testing.T) {
	n := newNode(t, "d")
	shared, err := os.MkdirTemp("", "p2pd-shared")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(shared, "p2pd-1000")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out := runRefused(t, n, "P2PD_NODE_CONTROL_SOCKET="+filepath.Join(dir, "p2pd.sock"))
	if want := "socket directory " + dir + " has mode 0755, not 0700"; code == 0 || !strings.Contains(out, want) {
		t.Fatalf("exit %d, output %s\nwant a refusal saying %q", code, out, want)
	}
}

// TestP2pctlRefusesPlantedFallbackDir is the attack on the default socket
// path: without XDG_RUNTIME_DIR, user 65534's p2pctl looks in
// /tmp/p2pd-65534, which user 65533 made first with a listening socket in it.
// p2pctl must refuse without connecting.
func TestP2pctlRefusesPlantedFallbackDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as two other users")
	}
	const victim, attacker = 65534, 65533
	dir := "/tmp/p2pd-" + strconv.Itoa(victim)
	if _, err := os.Lstat(dir); err == nil {
		t.Skipf("%s already exists; not touching it", dir)
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	sock := filepath.Join(dir, "p2pd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	for _, p := range []string{sock, dir} {
		if err := os.Chown(p, attacker, attacker); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(sock, 0o777)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.p2pctl, "status")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"} // no XDG_RUNTIME_DIR, no P2PD_*
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: victim, Gid: victim}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("p2pctl as uid %d: %v, want exit 1; output: %s", victim, err, out)
	}
	want := "socket directory " + dir + " is owned by uid " + strconv.Itoa(attacker) + ", not by this user (uid " + strconv.Itoa(victim) + ")"
	if !strings.Contains(string(out), want) {
		t.Fatalf("p2pctl output %q does not say %q", out, want)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("p2pctl connected %d times to the planted socket", n)
	}
}
