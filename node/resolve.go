package node

import (
	"fmt"
	"strings"

	"github.com/p2pd/p2pd/identity"
)

// What the local SOCKS5 and HTTP proxies need beyond DialService (they reach
// the node through proxy.Overlay, which cmd/p2pd wires); their dial,
// DialServiceAnswered, is in outbound.go.

// ResolvePeer returns the peer that label means in a DNS-shaped name
// (<service>.<peer>.p2p), in the form DialService takes: a [[peers]] name in
// any case, or the peer's ID as a base36 CIDv1 ("k51…", any case;
// identity.PeerID.Base36). Base58 IDs are not accepted here: a client that lower-cases the host
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

// looksLikePeerID reports whether s, which is no peer's name, was meant as
// a peer ID: it starts as one does. Its parse error then says what is
// wrong with it, instead of a lookup as a name that cannot succeed.
func looksLikePeerID(s string) bool {
	return strings.HasPrefix(s, "12D3KooW") || len(s) > len("k51") && strings.EqualFold(s[:3], "k51")
}
