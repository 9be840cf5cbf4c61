package discovery

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestLearnedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	withState := func(c *Config) { c.StateDir = dir }
	a := newNode(t, "127.0.0.1:0", withState)
	x := newKey(t).PeerID()

	a.d.Learned(x, "192.0.2.9:4242")
	a.d.Learned(x, "not an address") // ignored
	a.d.Learned(x, "0.0.0.0:4242")   // ignored: not dialable
	r, ok := waitRecord(t, a, 5*time.Second, func(r Record) bool { return r.Peer == x })
	if !ok || r.Source != SourceLearned || !slices.Equal(r.Addrs, []string{"192.0.2.9:4242"}) {
		t.Fatalf("record after Learned = %+v, %v; want learned [192.0.2.9:4242]", r, ok)
	}

	path := filepath.Join(dir, PeersFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("%s has mode %o, want 600", path, mode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f peersFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != peersFileVersion || !slices.Equal(f.Peers[x].Addrs, []string{"192.0.2.9:4242"}) {
		t.Fatalf("%s = %s (%v)", path, b, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	a.close()

	// A restart with the same state directory emits the learned record.
	b2 := newNode(t, "127.0.0.1:0", withState)
	r, ok = waitRecord(t, b2, 5*time.Second, func(r Record) bool { return r.Peer == x })
	if !ok || r.Source != SourceLearned || !slices.Equal(r.Addrs, []string{"192.0.2.9:4242"}) {
		t.Fatalf("record after restart = %+v, %v; want learned [192.0.2.9:4242]", r, ok)
	}
}

func TestLearnedStoreOrderAndBounds(t *testing.T) {
	s, err := loadLearned(filepath.Join(t.TempDir(), PeersFile), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	x := newKey(t).PeerID()
	now := time.Now()
	for _, a := range []string{"192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1", "192.0.2.4:1", "192.0.2.5:1", "192.0.2.2:1"} {
		if _, err := s.add(x, a, now); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"192.0.2.2:1", "192.0.2.5:1", "192.0.2.4:1", "192.0.2.3:1"}
	if got := s.peers[x].Addrs; !slices.Equal(got, want) {
		t.Fatalf("addresses %v, want newest first, at most %d: %v", got, maxLearnedPerPeer, want)
	}

	// Old entries are dropped at load; a corrupt file loads empty with an error.
	s2, err := loadLearned(s.path, now.Add(learnedMaxAge+time.Hour))
	if err != nil || len(s2.peers) != 0 {
		t.Fatalf("stale load: %d peers, %v", len(s2.peers), err)
	}
	if err := os.WriteFile(s.path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3, err := loadLearned(s.path, now)
	if err == nil || len(s3.peers) != 0 {
		t.Fatalf("corrupt load: %d peers, %v; want none and an error", len(s3.peers), err)
	}
}

// TestLearnedSavesSpacedOut: a burst of learned addresses (a peer whose
// sessions come from a new port each time) writes the file once, and the
// rest once learnedSaveEvery has passed or the store closes, instead of a
// write and an fsync per session.
func TestLearnedSavesSpacedOut(t *testing.T) {
	s, err := loadLearned(filepath.Join(t.TempDir(), PeersFile), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	onDisk := func() int {
		s2, err := loadLearned(s.path, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return len(s2.peers)
	}
	const burst = 100
	for i := range burst {
		if _, err := s.add(newKey(t).PeerID(), fmt.Sprintf("192.0.2.1:%d", 1000+i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if n := onDisk(); n != 1 {
		t.Fatalf("after a burst of %d, the file holds %d peers; want the first write alone (1), the rest due later", burst, n)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if n := onDisk(); n != burst {
		t.Fatalf("after the flush at close, the file holds %d peers; want %d", n, burst)
	}
}
