//go:build !linux

package attack

import (
	"errors"
	"net/netip"
)

type rawSocket struct{}

func openRawSocket() (*rawSocket, error) {
	return nil, errors.New("attack: the spoofed flood needs Linux raw sockets")
}

func (r *rawSocket) send([]byte, netip.Addr) error { return nil }
func (r *rawSocket) Close() error                  { return nil }
