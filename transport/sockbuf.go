package transport

import (
	"log/slog"
	"net"
)

// WantSocketBuffer is the UDP receive and send buffer the endpoint asks
// for: what quic-go needs to keep a fast single stream from dropping
// packets in bursts (its own target, so that it leaves the sockets alone).
const WantSocketBuffer = 7 << 20

// BufferSizes are a socket's buffers as the kernel reports them (Linux
// reports twice what was set; the comparison with WantSocketBuffer is on
// the reported value, as quic-go's is).
type BufferSizes struct {
	Receive, Send int
}

// short reports whether either buffer is below WantSocketBuffer.
func (b BufferSizes) short() bool {
	return b.Receive < WantSocketBuffer || b.Send < WantSocketBuffer
}

// raiseBuffers asks for WantSocketBuffer both ways, past the sysctl limits
// when the process may (root or CAP_NET_ADMIN), and warns once per socket
// with the fix when the kernel gives less.
func raiseBuffers(uc *net.UDPConn, log *slog.Logger) BufferSizes {
	uc.SetReadBuffer(WantSocketBuffer)
	uc.SetWriteBuffer(WantSocketBuffer)
	got := socketBuffers(uc)
	if got.short() {
		forceBuffers(uc, WantSocketBuffer)
		got = socketBuffers(uc)
	}
	if got.short() && got.Receive > 0 {
		log.Warn("transport: UDP socket buffers are smaller than QUIC needs; "+
			"a fast transfer will lose packets and slow down. Fix: sysctl -w "+
			"net.core.rmem_max=7340032 net.core.wmem_max=7340032 (or run p2pd as root, which raises them itself)",
			"socket", uc.LocalAddr().String(), "receive_kib", got.Receive>>10, "send_kib", got.Send>>10,
			"want_kib", WantSocketBuffer>>10)
	}
	return got
}
