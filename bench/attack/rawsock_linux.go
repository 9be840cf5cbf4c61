package attack

import (
	"fmt"
	"net/netip"
	"syscall"
)

// rawSocket is an IPv4 raw socket on which the caller writes whole IP
// packets (IPPROTO_RAW implies IP_HDRINCL). It needs CAP_NET_RAW.
type rawSocket struct{ fd int }

func openRawSocket() (*rawSocket, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("attack: raw socket (needs CAP_NET_RAW): %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_HDRINCL, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("attack: IP_HDRINCL: %w", err)
	}
	return &rawSocket{fd: fd}, nil
}

// send writes one IPv4 packet addressed to dst.
func (r *rawSocket) send(pkt []byte, dst netip.Addr) error {
	return syscall.Sendto(r.fd, pkt, 0, &syscall.SockaddrInet4{Addr: dst.As4()})
}

func (r *rawSocket) Close() error { return syscall.Close(r.fd) }
