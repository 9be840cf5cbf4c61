package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// socketMode is the permission of the control socket: owner only.
const socketMode = 0o600

// staleDialTimeout bounds the probe of an existing socket file.
const staleDialTimeout = time.Second

// Listen opens the control socket at path.
//
// A missing parent directory is created 0700. An existing socket file is
// probed: if a daemon answers, Listen fails; if the connection is refused
// the file is left over from a crashed daemon and is replaced. A path that
// exists and is not a socket is never touched. The socket is bound, set to
// 0600 and only then put into listening state, so no other user can connect
// in between whatever the umask. Closing the listener removes the socket
// file (if it is still the one this listener created).
func Listen(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("control: empty control socket path; set one")
	}
	if max := len(unix.RawSockaddrUnix{}.Path) - 1; len(path) > max {
		return nil, fmt.Errorf("control: socket path %q is %d bytes, longer than the %d a Unix socket allows; choose a shorter path", path, len(path), max)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: creating socket directory: %w", err)
	}
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := bindListen(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: socket %s vanished after bind: %w", path, err)
	}
	return &socketListener{Listener: ln, path: path, created: fi}, nil
}

// checkDir refuses a socket directory that another user could use to swap
// the socket: one owned by someone other than us or root, or writable by
// others without the sticky bit (as /tmp/p2pd-<uid> pre-created by another
// user would be).
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("control: checking socket directory: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("control: socket directory %s belongs to uid %d, not to this user; remove it or choose another control socket path", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("control: socket directory %s is writable by others (mode %v); make it 0700 or choose another control socket path", dir, fi.Mode().Perm())
	}
	return nil
}

// clearStale removes a socket file left by a dead daemon at path, and fails
// if a live daemon holds it or path is something other than a socket.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: checking %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control: %s exists and is not a socket; remove it or choose another control socket path", path)
	}
	c, err := net.DialTimeout("unix", path, staleDialTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("control: another p2pd is running on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control: probing existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control: removing stale socket %s: %w", path, err)
	}
	return nil
}

// bindListen binds a Unix stream socket at path, chmods it to socketMode and
// only then listens.
func bindListen(path string) (net.Listener, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("control: creating socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), path) // owns fd from here on
	defer f.Close()

	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("control: %s is already in use (another p2pd starting?)", path)
		}
		return nil, fmt.Errorf("control: binding %s: %w", path, err)
	}
	fail := func(step string, err error) (net.Listener, error) {
		os.Remove(path)
		return nil, fmt.Errorf("control: %s %s: %w", step, path, err)
	}
	if err := os.Chmod(path, socketMode); err != nil {
		return fail("setting mode of", err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return fail("listening on", err)
	}
	ln, err := net.FileListener(f) // dups fd; f's copy is closed by the defer
	if err != nil {
		return fail("wrapping listener for", err)
	}
	return ln, nil
}

// socketListener removes its socket file on Close.
type socketListener struct {
	net.Listener
	path    string
	created os.FileInfo // the file bound by Listen, to not remove a successor's

	closeOnce sync.Once
	closeErr  error
}

// Close closes the listener and removes the socket file if it is still the
// one this listener created. It is idempotent.
func (l *socketListener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.Listener.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.created) {
			if err := os.Remove(l.path); err != nil && l.closeErr == nil {
				l.closeErr = fmt.Errorf("control: removing socket %s: %w", l.path, err)
			}
		}
	})
	return l.closeErr
}
