package node

import (
	"sort"
	"sync"
	"time"

	"filippo.io/edwards25519/field"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// Refused handshakes: keys the transport turned away because they are not
// in the trust list. The node keeps the latest MaxPending of them so that a
// newcomer can be trusted with one command (p2pctl pending shows the ID,
// p2pctl trust add takes it), and logs each at INFO, at most once per key
// per refusedLogEvery and refusedLogBurst lines per refusedLogEvery in all.
const (
	MaxPending      = 64
	refusedLogEvery = time.Minute
	refusedLogBurst = 16
)

// PendingPeer is a key refused recently.
//
// The handshake proves the initiator's X25519 key, and the initiator states
// its Ed25519 key in message 1, checked against it (transport.Refusal): ID
// is then its exact peer ID and AltID is zero. An older node does not state
// it, and the X25519 key fixes the Ed25519 key, and so the peer ID, only up
// to one sign bit: the peer's ID is ID or AltID (`p2pd id` on that host
// tells which). Either, put in the trust list, admits the same key; the one
// that p2pd id prints is also the peer's libp2p identity, which discovery
// looks up.
type PendingPeer struct {
	ID        identity.PeerID
	AltID     identity.PeerID // zero when ID is exact, or the key has one form only
	Name      string          // the name the peer claims in its handshake; "" if none
	Remote    string          // the address of the latest attempt
	Carrier   string          // "quic" or "tcp", of the latest attempt
	Count     uint64
	FirstSeen time.Time
	LastSeen  time.Time
}

// pendingTable is the bounded table of refused keys, least recently seen
// evicted first. The zero value is empty and ready; it is safe for
// concurrent use.
type pendingTable struct {
	mu      sync.Mutex // guards everything below
	entries map[[32]byte]*pendingEntry
	// The global log budget: logged lines since windowStart, and refusals
	// not logged for want of budget (reported with the next line).
	windowStart time.Time
	logged      int
	suppressed  int
}

type pendingEntry struct {
	PendingPeer
	lastLogged time.Time
}

// record notes a refusal at now, ids being the peer's ID, or its two
// candidates. One ID replaces the candidates an earlier refusal of the key
// left; two do not replace one. It reports whether to log it, and how many
// refusals went unlogged since the last line for want of budget.
func (t *pendingTable) record(r transport.Refusal, ids []identity.PeerID, now time.Time) (e PendingPeer, log bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil {
		t.entries = make(map[[32]byte]*pendingEntry)
	}
	p := t.entries[r.NoiseStatic]
	if p == nil {
		if len(t.entries) >= MaxPending {
			t.evictOldest()
		}
		p = &pendingEntry{PendingPeer: PendingPeer{ID: ids[0], FirstSeen: now}}
		if len(ids) > 1 {
			p.AltID = ids[1]
		}
		t.entries[r.NoiseStatic] = p
	} else if len(ids) == 1 {
		p.ID, p.AltID = ids[0], identity.PeerID{}
	}
	p.Count++
	p.LastSeen = now
	p.Name, p.Carrier = r.Name, r.Carrier
	if r.Remote != nil {
		p.Remote = r.Remote.String()
	}
	if !p.lastLogged.IsZero() && now.Sub(p.lastLogged) < refusedLogEvery {
		return p.PendingPeer, false, 0
	}
	if now.Sub(t.windowStart) >= refusedLogEvery {
		t.windowStart, t.logged = now, 0
	}
	if t.logged >= refusedLogBurst {
		t.suppressed++
		return p.PendingPeer, false, 0
	}
	t.logged++
	p.lastLogged = now
	suppressed, t.suppressed = t.suppressed, 0
	return p.PendingPeer, true, suppressed
}

// evictOldest drops the least recently seen entry. t.mu is held.
func (t *pendingTable) evictOldest() {
	var oldest [32]byte
	var at time.Time
	first := true
	for k, e := range t.entries {
		if first || e.LastSeen.Before(at) {
			oldest, at, first = k, e.LastSeen, false
		}
	}
	delete(t.entries, oldest)
}

// list returns the entries whose key trusted does not know, newest first,
// and forgets the others (they were trusted since).
func (t *pendingTable) list(trusted func([32]byte) bool) []PendingPeer {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PendingPeer, 0, len(t.entries))
	for k, e := range t.entries {
		if trusted(k) {
			delete(t.entries, k)
			continue
		}
		out = append(out, e.PendingPeer)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out
}

// Pending returns the keys refused recently that are still not trusted,
// most recently seen first; at most MaxPending.
func (n *Node) Pending() []PendingPeer {
	return n.pending.list(func(k [32]byte) bool {
		_, ok := n.trustNoise(k)
		return ok
	})
}

// refused is the transport's Refused hook.
func (n *Node) refused(r transport.Refusal) {
	ids := refusedIDs(r)
	if len(ids) == 0 {
		return // a key no Ed25519 key maps to: no peer ID could ever name it
	}
	e, log, suppressed := n.pending.record(r, ids, time.Now())
	if !log {
		return
	}
	args := []any{"peer", e.ID.String(), "remote", e.Remote, "carrier", e.Carrier}
	if e.Name != "" {
		args = append(args, "name", e.Name)
	}
	if !e.AltID.IsZero() {
		args = append(args, "or_peer", e.AltID.String())
	}
	if suppressed > 0 {
		args = append(args, "unlogged_refusals", suppressed)
	}
	n.log.Info("refused a handshake from an untrusted key (p2pctl pending lists it; p2pctl trust add NAME ID trusts it)", args...)
}

// refusedIDs returns the peer ID the refused initiator stated, or, when it
// stated none (an older node), the candidates its key names.
func refusedIDs(r transport.Refusal) []identity.PeerID {
	if !r.PeerID.IsZero() {
		return []identity.PeerID{r.PeerID}
	}
	return peerIDsOfNoiseKey(r.NoiseStatic)
}

// peerIDsOfNoiseKey returns the peer IDs whose Noise static key is u: the
// Ed25519 keys on the Edwards point y = (u-1)/(u+1), with either sign of x.
// It returns none for a key that is not the image of a valid Ed25519 key.
func peerIDsOfNoiseKey(u [32]byte) []identity.PeerID {
	ue, err := new(field.Element).SetBytes(u[:])
	if err != nil {
		return nil
	}
	one := new(field.Element).One()
	num := new(field.Element).Subtract(ue, one)
	den := new(field.Element).Add(ue, one)
	y := new(field.Element).Multiply(num, new(field.Element).Invert(den))
	var ids []identity.PeerID
	for _, sign := range []byte{0, 0x80} {
		pk := identity.PublicKey(y.Bytes())
		pk[31] |= sign
		if nk, err := pk.NoisePublic(); err == nil && nk == u {
			ids = append(ids, pk.PeerID())
		}
	}
	return ids
}
