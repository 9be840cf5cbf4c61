package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// PeersFile is the name of the learned-address file in the state directory.
const PeersFile = "peers.json"

// Bounds of the learned-address store.
const (
	peersFileVersion  = 1
	maxLearnedPerPeer = 4                   // newest first
	maxLearnedPeers   = 1024                // the least recently seen go first
	learnedMaxAge     = 30 * 24 * time.Hour // older entries are dropped at load
	learnedRefresh    = time.Hour           // a repeated address rewrites the file at most this often
)

// peersFile is the JSON layout of PeersFile:
//
//	{"version": 1, "peers": {"12D3KooW…": {"addrs": ["192.0.2.7:4242"], "seen": "2006-01-02T15:04:05Z"}}}
type peersFile struct {
	Version int                              `json:"version"`
	Peers   map[identity.PeerID]learnedEntry `json:"peers"`
}

type learnedEntry struct {
	Addrs []string  `json:"addrs"`
	Seen  time.Time `json:"seen"`
}

// learnedStore holds the addresses live sessions observed and keeps them in
// a file, written atomically (temporary file, fsync, rename) with mode 0600.
// An empty path keeps them in memory only.
type learnedStore struct {
	path string
	// onErr is told of a save that failed after add returned (a
	// deferred one); nil drops it.
	onErr func(error)

	mu      sync.Mutex // guards peers, saved, pending and the file
	peers   map[identity.PeerID]learnedEntry
	saved   time.Time   // the last write of the file
	pending *time.Timer // a write due, not yet done
}

// learnedSaveEvery spaces out writes of the file: a peer whose sessions
// each come from a new port (or that reconnects in a loop) would otherwise
// cost a file write and an fsync per session. A change within it of the
// last write is written when it has passed, and at close.
const learnedSaveEvery = 10 * time.Second

// loadLearned reads the store at path. A missing file is an empty store; an
// unreadable or corrupt one is an empty store and an error to log (the file
// is rewritten on the next change).
func loadLearned(path string, now time.Time) (*learnedStore, error) {
	s := &learnedStore{path: path, peers: map[identity.PeerID]learnedEntry{}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("discovery: read learned addresses: %w", err)
	}
	var f peersFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != peersFileVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", f.Version, peersFileVersion)
		}
		return s, fmt.Errorf("discovery: learned addresses %s: %v (ignored; it is rewritten when a session learns an address)", path, err)
	}
	for id, e := range f.Peers {
		e.Addrs = validAddrs(e.Addrs)
		if id.IsZero() || len(e.Addrs) == 0 || now.Sub(e.Seen) > learnedMaxAge {
			continue
		}
		s.peers[id] = e
	}
	return s, nil
}

// validAddrs keeps the dialable "ip:port" strings, at most maxLearnedPerPeer.
func validAddrs(list []string) []string {
	var out []string
	for _, a := range list {
		if ap, err := parseOverlay(a); err == nil && dialable(ap) && !slices.Contains(out, ap.String()) {
			out = append(out, ap.String())
		}
	}
	if len(out) > maxLearnedPerPeer {
		out = out[:maxLearnedPerPeer]
	}
	return out
}

// records returns a record for every stored peer.
func (s *learnedStore) records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.peers))
	for id, e := range s.peers {
		out = append(out, Record{Peer: id, Addrs: slices.Clone(e.Addrs), Source: SourceLearned})
	}
	return out
}

// add puts addr first in id's list and persists the store when it changed.
// It returns id's list.
func (s *learnedStore) add(id identity.PeerID, addr string, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.peers[id]
	addrs := append([]string{addr}, slices.DeleteFunc(slices.Clone(old.Addrs), func(a string) bool { return a == addr })...)
	if len(addrs) > maxLearnedPerPeer {
		addrs = addrs[:maxLearnedPerPeer]
	}
	if had && slices.Equal(addrs, old.Addrs) && now.Sub(old.Seen) < learnedRefresh {
		return addrs, nil
	}
	s.peers[id] = learnedEntry{Addrs: addrs, Seen: now}
	s.evictLocked()
	return slices.Clone(addrs), s.saveSoonLocked()
}

// saveSoonLocked writes the file now, or once learnedSaveEvery has passed
// since the last write.
func (s *learnedStore) saveSoonLocked() error {
	if s.pending != nil {
		return nil // the write that is due will carry this change
	}
	wait := learnedSaveEvery - time.Since(s.saved)
	if wait <= 0 {
		return s.saveLocked()
	}
	s.pending = time.AfterFunc(wait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pending == nil {
			return // flushed meanwhile
		}
		s.pending = nil
		if err := s.saveLocked(); err != nil && s.onErr != nil {
			s.onErr(err)
		}
	})
	return nil
}

// flush writes a change that is waiting, as the store closes.
func (s *learnedStore) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return nil
	}
	s.pending.Stop()
	s.pending = nil
	return s.saveLocked()
}

// evictLocked drops the least recently seen peers beyond maxLearnedPeers.
func (s *learnedStore) evictLocked() {
	for len(s.peers) > maxLearnedPeers {
		var oldest identity.PeerID
		var at time.Time
		for id, e := range s.peers {
			if oldest.IsZero() || e.Seen.Before(at) {
				oldest, at = id, e.Seen
			}
		}
		delete(s.peers, oldest)
	}
}

func (s *learnedStore) saveLocked() error {
	if s.path == "" {
		return nil
	}
	s.saved = time.Now()
	b, err := json.MarshalIndent(peersFile{Version: peersFileVersion, Peers: s.peers}, "", "  ")
	if err != nil {
		return fmt.Errorf("discovery: encode learned addresses: %w", err)
	}
	return writeFileAtomic(s.path, append(b, '\n'))
}

// writeFileAtomic replaces path with b: readers see the old or the new
// file, never a part, and a crash leaves one of them.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("discovery: state directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // created 0600
	if err != nil {
		return fmt.Errorf("discovery: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("discovery: write %s: %w", path, err)
	}
	return nil
}
