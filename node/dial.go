package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/p2pd/p2pd/transport"
)

// maxDialAddrs bounds the addresses one dial tries.
const maxDialAddrs = 16

// dial tries every known address of p at once (at most maxDialAddrs) and, with discovery, looks
// the peer up at the same time and dials what the lookup adds (a peer that
// moved is found while its old addresses time out). The first completed
// handshake wins; the others are cancelled or closed.
func (n *Node) dial(ctx context.Context, p *peer) (*transport.Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		s   *transport.Session
		err error
	}
	results := make(chan result)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards tried
	tried := map[string]bool{}
	start := func(addr string) {
		mu.Lock()
		defer mu.Unlock()
		if tried[addr] || ctx.Err() != nil {
			return
		}
		if len(tried) >= maxDialAddrs {
			// Addresses come from discovery too, where anyone on the LAN
			// may answer for a peer: one dial costs a bounded number of
			// connections, each bounded before authentication.
			n.log.Debug("dial: address not tried, the dial has enough", "peer", p.nameNow(), "remote", addr, "limit", maxDialAddrs)
			return
		}
		tried[addr] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := n.ep.Dial(ctx, p.id, addr)
			results <- result{s, err}
		}()
	}
	for _, a := range p.dialAddrs() {
		start(a)
	}
	if n.discovery() != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range n.findPeer(ctx, p) {
				start(a)
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	var won *transport.Session
	var errs []error
	for r := range results {
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case won == nil:
			won = r.s
			cancel()
		default:
			r.s.Close(transport.CodeDuplicate)
		}
	}
	if won != nil {
		return won, nil
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("node: peer %q has no known address (add addresses to its [[peers]] entry, or enable discovery)", p.name)
	}
	return nil, errors.Join(errs...)
}
