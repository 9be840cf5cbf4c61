package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// What the local SOCKS5 and HTTP proxies need beyond DialService (they reach
// the node through proxy.Overlay, which cmd/p2pd wires).

// ResolvePeer returns the peer that label means in a DNS-shaped name
// (<service>.<peer>.p2p), in the form DialService takes: a [[peers]] name in
// any case, or the peer's ID as a base36 CIDv1 ("k51…", any case; DESIGN.md
// §2). Base58 IDs are not accepted here: a client that lower-cases the host
// name breaks them. An unknown label is an error wrapping ErrUnknownPeer.
func (n *Node) ResolvePeer(label string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.byName[label]; ok {
		return label, nil
	}
	for name := range n.byName {
		if strings.EqualFold(name, label) {
			return name, nil
		}
	}
	if label != "" && (label[0] == 'k' || label[0] == 'K') {
		if id, err := identity.ParsePeerID(label); err == nil {
			if _, ok := n.peers[id]; ok {
				return id.String(), nil
			}
		}
	}
	return "", fmt.Errorf("%w %q (not in [[peers]])", ErrUnknownPeer, label)
}

// DialServiceAnswered opens a stream to service on peer like DialService,
// but returns only once the service has answered: a refusal is the returned
// error (a *transport.StatusError). The SOCKS5 and HTTP CONNECT proxies use
// it, since their client waits for the proxy's reply before it sends
// anything: an early stream's OK would then wait for payload that never
// comes (the accepting side holds it back, see transport.Stream.Respond).
func (n *Node) DialServiceAnswered(ctx context.Context, peerName, svc string) (proxy.Conn, error) {
	return n.dialService(ctx, peerName, svc, transport.KindTCP, func(ctx context.Context, s *transport.Session, req transport.Request) (*transport.Stream, error) {
		n.watchAnswer(s) // a crashed peer's session fails the wait at once (unreachable.go)
		return s.OpenStream(ctx, req, n.cfg.HeaderTimeout)
	})
}

// isAnswer reports whether err is the service's answer, which no other path
// to the peer would change.
func isAnswer(err error) bool {
	var se *transport.StatusError
	return errors.As(err, &se)
}

// looksLikePeerID reports whether s, which is no peer's name, was meant as
// a peer ID: it starts as one does. Its parse error then says what is
// wrong with it, instead of a lookup as a name that cannot succeed.
func looksLikePeerID(s string) bool {
	return strings.HasPrefix(s, "12D3KooW") || len(s) > len("k51") && strings.EqualFold(s[:3], "k51")
}
