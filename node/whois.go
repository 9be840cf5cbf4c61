package node

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// Connection is a live connection this node dialed to a service's target for
// a peer's stream, as Whois reports it: for a backend without the PROXY
// protocol, Local (its client's address) tells which peer is behind it.
type Connection struct {
	Local   netip.AddrPort // the connection's local address, IPv4 unmapped
	Target  string         // the service's target
	Service string
	Peer    string // the peer's name in the trust list
	PeerID  identity.PeerID
	Since   time.Time // when the target connection was made
}

// targetConns indexes the live target connections by local address. The
// zero value is empty and ready. Two entries share an address only when the
// kernel reused a local port toward different targets.
type targetConns struct {
	mu      sync.Mutex // guards byLocal
	byLocal map[netip.AddrPort][]*Connection
}

// add records target, dialed for service cfg and the peer id called
// peerName, and returns the func that removes it when the stream ends.
// Connections without an IP address (unix: targets) are not recorded.
func (tc *targetConns) add(target net.Conn, id identity.PeerID, peerName string, cfg Service) (remove func()) {
	local := addrPort(target.LocalAddr())
	if !local.IsValid() {
		return func() {}
	}
	c := &Connection{Local: local, Target: cfg.Target, Service: cfg.Name, Peer: peerName, PeerID: id, Since: time.Now()}
	tc.mu.Lock()
	if tc.byLocal == nil {
		tc.byLocal = make(map[netip.AddrPort][]*Connection)
	}
	tc.byLocal[local] = append(tc.byLocal[local], c)
	tc.mu.Unlock()
	return func() {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		rest := slices.DeleteFunc(tc.byLocal[local], func(x *Connection) bool { return x == c })
		if len(rest) == 0 {
			delete(tc.byLocal, local)
			return
		}
		tc.byLocal[local] = rest
	}
}

// Whois returns the live target connections whose local address is addr
// (an IPv4-mapped IPv6 address matches its IPv4 form), oldest first; none
// when no overlay stream owns that address.
func (n *Node) Whois(addr netip.AddrPort) []Connection {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	n.conns.mu.Lock()
	defer n.conns.mu.Unlock()
	var out []Connection
	for _, c := range n.conns.byLocal[addr] {
		out = append(out, *c)
	}
	return out
}
