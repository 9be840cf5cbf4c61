package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// notifier tells systemd about the daemon's state, as sd_notify(3) does:
// one datagram per message to the Unix datagram socket named by
// $NOTIFY_SOCKET. A name starting with '@' is a socket in the abstract
// namespace (the '@' stands for the leading NUL byte). Without
// NOTIFY_SOCKET, as when p2pd runs outside a Type=notify unit, every method
// does nothing. The zero value is such a no-op notifier.
//
// The messages p2pd sends:
//
//	READY=1                          the node runs and the control socket listens
//	RELOADING=1 MONOTONIC_USEC=<µs>  a reload starts (SIGHUP or p2pctl reload)
//	READY=1                          the reload is done, applied or not
//	STOPPING=1                       shutdown has begun
type notifier struct {
	addr *net.UnixAddr // nil: no-op
}

// newNotifier reads $NOTIFY_SOCKET. An empty value, or one that is neither
// an absolute path nor an abstract name, gives a no-op notifier.
func newNotifier() notifier {
	name := os.Getenv("NOTIFY_SOCKET")
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") || len(name) < 2 {
		return notifier{}
	}
	// The net package maps a leading '@' to the abstract namespace on Linux.
	return notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// enabled reports whether a notification socket is set.
func (n notifier) enabled() bool { return n.addr != nil }

// send writes the lines of state as one datagram.
func (n notifier) send(state ...string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(state, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %s: %w", n.addr.Name, err)
	}
	return nil
}

// ready says the daemon serves.
func (n notifier) ready() error { return n.send("READY=1") }

// reloading says a reload started, with the monotonic clock's time as
// systemd asks for (it then waits for the next READY=1).
func (n notifier) reloading() error {
	if n.addr == nil {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return errors.Join(errors.New("sd_notify: reading CLOCK_MONOTONIC"), err)
	}
	usec := ts.Nano() / 1000
	return n.send("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", usec))
}

// stopping says shutdown has begun.
func (n notifier) stopping() error { return n.send("STOPPING=1") }

// notify logs a failed systemd notification; the daemon goes on.
func (d *daemon) notify(err error) {
	if err != nil {
		d.log.Warn("systemd notification failed", "err", err)
	}
}
