package transport

import (
	"net"

	"golang.org/x/sys/unix"
)

// socketBuffers reads SO_RCVBUF and SO_SNDBUF; zeros when it cannot.
func socketBuffers(uc *net.UDPConn) BufferSizes {
	var b BufferSizes
	rc, err := uc.SyscallConn()
	if err != nil {
		return b
	}
	rc.Control(func(fd uintptr) {
		b.Receive, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		b.Send, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return b
}

// forceBuffers sets both buffers past net.core.[rw]mem_max, which only a
// process with CAP_NET_ADMIN may; the errors of others are ignored (the
// caller reads back what it got).
func forceBuffers(uc *net.UDPConn, n int) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
	})
}
