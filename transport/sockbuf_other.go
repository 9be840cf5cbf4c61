//go:build !linux

package transport

import "net"

// socketBuffers cannot read the buffers here: zeros, and no warning.
func socketBuffers(*net.UDPConn) BufferSizes { return BufferSizes{} }

func forceBuffers(*net.UDPConn, int) {}
