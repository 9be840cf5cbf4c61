package node

import (
	"crypto/rand"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

func refusalOf(t *testing.T, k identity.PrivateKey) (transport.Refusal, []identity.PeerID) {
	t.Helper()
	nk, err := k.Public().NoisePublic()
	if err != nil {
		t.Fatal(err)
	}
	ids := peerIDsOfNoiseKey(nk)
	return transport.Refusal{NoiseStatic: nk, Name: "x", Remote: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4242}, Carrier: "quic"}, ids
}

// TestPeerIDsOfNoiseKey: the key's own peer ID is always among the two
// recovered from its X25519 key, and both map back to that X25519 key.
func TestPeerIDsOfNoiseKey(t *testing.T) {
	for range 200 {
		k, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		nk, _ := k.Public().NoisePublic()
		ids := peerIDsOfNoiseKey(nk)
		if len(ids) != 2 || !slices.Contains(ids, k.PeerID()) {
			t.Fatalf("key %s: recovered %v", k.PeerID(), ids)
		}
		for _, id := range ids {
			if got, err := id.PublicKey().NoisePublic(); err != nil || got != nk {
				t.Fatalf("%s maps to another X25519 key (%v)", id, err)
			}
		}
	}
	if ids := peerIDsOfNoiseKey([32]byte{}); len(ids) != 0 {
		t.Errorf("the zero key gave %v", ids)
	}
}

func TestPendingTableBoundedAndRateLimited(t *testing.T) {
	var tab pendingTable
	now := time.Unix(1_000_000, 0)
	first, ids := refusalOf(t, mustKey(t))
	_, log, _ := tab.record(first, ids, now)
	if !log {
		t.Fatal("the first refusal of a key is not logged")
	}
	e, log, _ := tab.record(first, ids, now.Add(time.Second))
	if log || e.Count != 2 || !e.FirstSeen.Equal(now) || e.Remote != "192.0.2.1:4242" {
		t.Fatalf("second refusal: log %v, entry %+v", log, e)
	}
	if _, log, _ = tab.record(first, ids, now.Add(refusedLogEvery)); !log {
		t.Error("a refusal a minute later is not logged")
	}
	// Many keys: the table keeps MaxPending, the most recent, and the log
	// budget holds refusedLogBurst lines a minute, reporting the rest.
	logged, suppressed := 0, 0
	for i := range MaxPending + 10 {
		r, ids := refusalOf(t, mustKey(t))
		_, log, s := tab.record(r, ids, now.Add(refusedLogEvery+time.Duration(i+1)*time.Millisecond))
		if log {
			logged++
		}
		suppressed += s
	}
	if logged != refusedLogBurst-1 || suppressed != 0 {
		t.Errorf("logged %d lines (suppressed %d reported) in a minute, want %d", logged, suppressed, refusedLogBurst-1)
	}
	list := tab.list(func([32]byte) bool { return false })
	if len(list) != MaxPending {
		t.Fatalf("%d entries, want %d", len(list), MaxPending)
	}
	if slices.ContainsFunc(list, func(p PendingPeer) bool { return p.ID == ids[0] }) {
		t.Error("the least recently seen key was not evicted")
	}
	if !list[0].LastSeen.After(list[len(list)-1].LastSeen) {
		t.Error("not newest first")
	}
	r, ids := refusalOf(t, mustKey(t))
	_, log, s := tab.record(r, ids, now.Add(3*refusedLogEvery))
	if !log || s != MaxPending+10-(refusedLogBurst-1) {
		t.Errorf("next window: log %v, reported %d suppressed, want %d", log, s, MaxPending+10-(refusedLogBurst-1))
	}
	if got := tab.list(func(k [32]byte) bool { return k == r.NoiseStatic }); slices.ContainsFunc(got, func(p PendingPeer) bool { return p.ID == ids[0] }) {
		t.Error("a trusted key is still listed")
	}
}

// TestPendingExactID: a refusal that carries the initiator's peer ID lists
// that one ID, no alternative; one from an older node lists both
// candidates, until a refusal of the same key names the exact one, which a
// later refusal without it does not undo.
func TestPendingExactID(t *testing.T) {
	var tab pendingTable
	now := time.Unix(1_000_000, 0)
	k := mustKey(t)
	r, candidates := refusalOf(t, k)
	exact := r
	exact.PeerID = k.PeerID()
	if ids := refusedIDs(exact); len(ids) != 1 || ids[0] != k.PeerID() {
		t.Fatalf("refusedIDs with a stated ID = %v, want [%s]", ids, k.PeerID())
	}
	if ids := refusedIDs(r); !slices.Equal(ids, candidates) || len(ids) != 2 {
		t.Fatalf("refusedIDs without a stated ID = %v, want both candidates %v", ids, candidates)
	}

	if e, _, _ := tab.record(exact, refusedIDs(exact), now); e.ID != k.PeerID() || !e.AltID.IsZero() {
		t.Fatalf("exact refusal: entry %s / %s, want %s alone", e.ID, e.AltID, k.PeerID())
	}
	if e, _, _ := tab.record(r, refusedIDs(r), now.Add(time.Second)); e.ID != k.PeerID() || !e.AltID.IsZero() || e.Count != 2 {
		t.Fatalf("a later refusal without the ID: entry %+v, want %s alone, count 2", e, k.PeerID())
	}

	k2 := mustKey(t)
	old, _ := refusalOf(t, k2)
	if e, _, _ := tab.record(old, refusedIDs(old), now); e.AltID.IsZero() {
		t.Fatalf("older node: entry %+v, want two candidates", e)
	}
	upgraded := old
	upgraded.PeerID = k2.PeerID()
	if e, _, _ := tab.record(upgraded, refusedIDs(upgraded), now.Add(time.Second)); e.ID != k2.PeerID() || !e.AltID.IsZero() {
		t.Fatalf("after an exact refusal: entry %s / %s, want %s alone", e.ID, e.AltID, k2.PeerID())
	}
	for _, p := range tab.list(func([32]byte) bool { return false }) {
		if !p.AltID.IsZero() {
			t.Errorf("listed %s with an alternative %s", p.ID, p.AltID)
		}
	}
}
