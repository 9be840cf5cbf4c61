package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// unixPrefix marks a forward that listens on a Unix socket: "unix:/path".
const unixPrefix = "unix:"

// UnixSocketMode is the mode of a forward's Unix socket: the daemon's user
// and group may connect. The group is the one the socket is created with
// (the daemon's, or the directory's when it is setgid); p2pd leaves it.
const UnixSocketMode = 0o660

// staleProbeTimeout bounds the dial that tells a socket file left by a dead
// process (refused at once) from one a live process listens on.
const staleProbeTimeout = time.Second

// listenUnix listens on the Unix socket path, mode UnixSocketMode. A socket
// file that refuses connections is stale and removed first; a live socket
// or another kind of file is an error. Closing the listener removes the file.
func listenUnix(path string) (net.Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The socket exists with the umask's mode until here; connecting needs
	// write permission, so nobody outside the user and group gets in later.
	if err := os.Chmod(path, UnixSocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting mode %#o on the socket: %w", UnixSocketMode, err)
	}
	return ln, nil
}

// removeStale removes the socket file at path if no process listens on it.
// Nothing at path is fine; anything but a dead socket is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is %s, not a socket; remove it or choose another path", path, fileKind(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, staleProbeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is a live socket: another process listens on it; stop that process or choose another path", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: cannot tell whether a process listens on the socket (%w); remove it if none does", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	return nil
}

// fileKind names a file's type for a message.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	}
	return "a special file"
}
