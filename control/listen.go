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
// A missing parent directory is created 0700. When that directory sits in a
// directory others can write to, as the fallback /tmp/p2pd-<uid> does,
// anyone could have made it first, so it must pass checkPrivateDir: it is
// created with Mkdir (a planted link is not followed) and must be a real
// directory, owned by this user, mode 0700. An existing socket file is
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
	if dir := filepath.Dir(path); inSharedDir(dir) {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("control: creating socket directory: %w", err)
		}
		if err := checkPrivateDir(dir); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("control: creating socket directory: %w", err)
		}
		if err := checkDir(dir); err != nil {
			return nil, err
		}
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

// privateDirFix is the way out of a refused socket directory that sits in a
// shared one: the fallback directory is used only without XDG_RUNTIME_DIR and
// without a control_socket in the config.
const privateDirFix = "remove it, or set XDG_RUNTIME_DIR or control_socket"

// inSharedDir reports whether dir's parent exists and is writable by group or
// others (sticky or not, like /tmp), so that someone else could have created
// dir, or a link by its name, before us.
func inSharedDir(dir string) bool {
	fi, err := os.Stat(filepath.Dir(dir))
	return err == nil && fi.Mode().Perm()&0o022 != 0
}

// checkPrivateDir refuses a socket directory in a shared directory unless it
// is a directory (looked at with Lstat: a symbolic link is refused, never
// followed), owned by the effective user, with mode 0700 exactly. Each error
// names the directory, the problem and the fix.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control: checking socket directory: %w", err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("control: socket directory %s is a symbolic link, which p2pd does not follow in %s, where others can make one; %s",
			dir, filepath.Dir(dir), privateDirFix)
	case !fi.IsDir():
		return fmt.Errorf("control: socket directory %s is not a directory; %s", dir, privateDirFix)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != euid {
			return fmt.Errorf("control: socket directory %s is owned by uid %d, not by this user (uid %d), so another user made it first; %s (removing it needs that user or root)",
				dir, st.Uid, euid, privateDirFix)
		}
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		return fmt.Errorf("control: socket directory %s has mode %04o, not 0700; fix with: chmod 700 %s, or %s",
			dir, perm, dir, privateDirFix)
	}
	return nil
}

// CheckSocket is what a client does before it dials the control socket at
// path, so that it never talks to a socket that another user planted. When
// the socket's directory sits in a directory others can write to (the
// fallback /tmp/p2pd-<uid> without XDG_RUNTIME_DIR), that directory must pass
// the rules Listen applies to it, and an existing socket file must be owned by
// this user or root. A missing directory or socket passes: dialing it then
// reports that no daemon is running. Elsewhere CheckSocket checks nothing.
func CheckSocket(path string) error {
	dir := filepath.Dir(path)
	if !inSharedDir(dir) {
		return nil
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := checkPrivateDir(dir); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: checking socket %s: %w", path, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != euid && st.Uid != 0 {
			return fmt.Errorf("control: socket %s is owned by uid %d, not by this user (uid %d) or root, so it is not this user's p2pd; remove it",
				path, st.Uid, euid)
		}
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
