package node

import "time"

// Crash stops n the way a killed process stops: its sockets close before
// anything can tell the peers, so they learn of it only from the network.
func Crash(n *Node) {
	n.ep.Close()
	n.Close()
}

// Dialing reports whether n is dialing the peer called name right now.
func Dialing(n *Node, name string) bool {
	p, err := n.lookup(name)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dialing != nil
}

// SetRetireTimeout shortens how long a replaced session may finish its
// streams; the function it returns restores the default.
func SetRetireTimeout(d time.Duration) (restore func()) {
	retireBound.Store(int64(d))
	return func() { retireBound.Store(0) }
}
