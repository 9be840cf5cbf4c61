package node

import (
	"context"
	"fmt"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// Relayed paths: when no direct path exists, discovery (Discovery's
// OpenRelayed) carries overlay streams over libp2p through a circuit relay.
// Identity then comes from libp2p's authenticated connection; the stream
// header is the same.

// Relayed is an outbound relayed stream.
type Relayed interface {
	proxy.Conn
	SetReadDeadline(t time.Time) error
}

// relayer is the node's discovery, nil without one: what relayed paths go
// through.
func (n *Node) relayer() Discovery { return n.discovery() }

// openRelayed opens req to p through libp2p when no direct session can be had.
func (n *Node) openRelayed(ctx context.Context, p *peer, req transport.Request) (proxy.Conn, error) {
	r := n.relayer()
	if r == nil {
		return nil, errNoRelay
	}
	st, err := r.OpenRelayed(ctx, p.id)
	if err != nil {
		return nil, err
	}
	hdr, err := req.AppendBinary(nil)
	if err != nil {
		st.Abort()
		return nil, err
	}
	if _, err := st.Write(hdr); err != nil {
		st.Abort()
		return nil, err
	}
	st.SetReadDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	resp, err := transport.ReadResponse(st)
	st.SetReadDeadline(time.Time{})
	if err != nil {
		st.Abort()
		return nil, err
	}
	if resp.Status != transport.StatusOK {
		st.Abort()
		return nil, &transport.StatusError{Status: resp.Status, Service: req.Service}
	}
	return st, nil
}

var errNoRelay = fmt.Errorf("node: no relay path")

// ServeRelayed handles a stream that a trusted peer opened over libp2p.
// The stream is reset if id is not trusted.
func (n *Node) ServeRelayed(id identity.PeerID, st Inbound) {
	n.mu.Lock()
	p := n.peers[id]
	draining := n.draining
	n.mu.Unlock()
	if p == nil || draining || n.ctx.Err() != nil {
		st.Abort()
		return
	}
	select {
	case p.limits.headerWait <- struct{}{}:
	default:
		// libp2p's resource manager bounds relayed streams; past the
		// peer's header-wait share they are refused, not queued.
		st.Abort()
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.handleStream(p, st)
	}()
}
