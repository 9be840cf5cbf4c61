package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

const (
	peerDialers = 16              // peer sessions being set up at once
	peerSettle  = 2 * time.Second // after the last session, before RSS is read
)

// idlePeers measures a hub daemon's RSS per idle peer session and its CPU per
// session in the storm that sets them up. The hub is a real p2pd process
// that knows the n peers by ID only; each peer is a transport endpoint in
// this process, with its own key and UDP socket, that dials the hub and
// keeps its session (the protocol of a daemon, without a daemon's 20 MiB,
// so that 1,000 fit on the machine). The same is then done with n raw
// quic-go connections to a fresh quic-go server, as the floor.
func (r *runner) idlePeers(t *topo, n int) error {
	dir := filepath.Join(r.work, "peers")
	hub, err := r.newNode(filepath.Join(dir, "hub"), "hub", t.serverIP)
	if err != nil {
		return err
	}
	hubID, err := identity.ParsePeerID(hub.id)
	if err != nil {
		return fmt.Errorf("bench: hub id %q: %w", hub.id, err)
	}
	keys := make([]identity.PrivateKey, n)
	var hubPeers strings.Builder
	for i := range keys {
		if keys[i], err = identity.GenerateKey(rand.Reader); err != nil {
			return err
		}
		hubPeers.WriteString(peerTOML(peerName(i), keys[i].PeerID().String(), ""))
	}
	if err := hub.writeConfig(r.o.logLevel, hubPeers.String()); err != nil {
		return err
	}
	if err := r.startNode(hub, nil); err != nil {
		return err
	}
	defer stopProcs([]*proc{hub.proc})
	time.Sleep(time.Second)
	rss0, _ := rssKiB(hub.proc.pid())
	cpu0 := cpuOf([]*proc{hub.proc})

	r.logf("peers: %d sessions to the hub, %d being set up at once", n, peerDialers)
	peers := make([]*idlePeer, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, peerDialers)
	for i := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			peers[i], errs[i] = dialIdlePeer(ctx, keys[i], peerName(i), t.clientIP, hubID, hub.listen)
		}()
	}
	wg.Wait()
	defer func() {
		for _, p := range peers {
			p.close()
		}
	}()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > n/10 {
		return fmt.Errorf("bench: %d of %d peer sessions failed: %w", len(failed), n, failed[0])
	}
	if len(failed) > 0 {
		r.res.note("peers: %d of %d peer sessions failed and were left out: %v", len(failed), n, failed[0])
	}
	want := n - len(failed)
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) && r.ctx.Err() == nil {
		if got, err = r.sessionCount(r.ctx, hub); err == nil && got >= want {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	cpu1 := cpuOf([]*proc{hub.proc})
	if got == 0 {
		return fmt.Errorf("bench: the hub holds no sessions with its %d peers: %v; hub log: %s", want, err, tail(hub.proc.logPath, 3))
	}
	time.Sleep(peerSettle)
	rss1, _ := rssKiB(hub.proc.pid())
	if now, err := r.sessionCount(r.ctx, hub); err == nil && now < got {
		r.res.note("peers: the hub held %d sessions, then %d after %v", got, now, peerSettle)
		got = now
	}
	r.res.add("mem_session", sysP2PD, float64(rss1-rss0)/float64(got))
	r.recordStorm(sysP2PD, cpu1-cpu0, got)
	r.res.note("idle sessions: hub held %d of %d; hub RSS %d → %d KiB; the peers are transport endpoints in the harness, one key and UDP socket each",
		got, want, rss0, rss1)
	r.logf("peers: hub holds %d/%d sessions, RSS %d→%d KiB", got, want, rss0, rss1)
	return nil
}

func peerName(i int) string { return fmt.Sprintf("p%04d", i) }

// idlePeer is one peer of the idle-session figure: an endpoint and its
// session with the hub.
type idlePeer struct {
	ep *transport.Endpoint
	s  *transport.Session
}

// dialIdlePeer starts an endpoint with key on ip and sets up a session with
// the hub. The endpoint trusts no one: it only dials.
func dialIdlePeer(ctx context.Context, key identity.PrivateKey, name, ip string, hub identity.PeerID, hubAddr string) (*idlePeer, error) {
	var inst [8]byte
	rand.Read(inst[:])
	ep, err := transport.Listen(transport.Config{
		Key: key, Listen: []string{net.JoinHostPort(ip, "0")}, Name: name,
		Instance: binary.LittleEndian.Uint64(inst[:]),
		Trust:    func([32]byte) (identity.PeerID, bool) { return identity.PeerID{}, false },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("bench: peer %s: %w", name, err)
	}
	s, err := ep.Dial(ctx, hub, hubAddr)
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("bench: peer %s: %w", name, err)
	}
	return &idlePeer{ep: ep, s: s}, nil
}

func (p *idlePeer) close() {
	if p == nil {
		return
	}
	p.s.Close(transport.CodeNormal)
	p.ep.Close()
}

// idleQUIC is the same figure for raw quic-go: n connections from the
// harness to a fresh server, the server's RSS per connection and CPU per
// handshake.
func (r *runner) idleQUIC(t *topo, n int) error {
	raw, err := r.newQuicRaw(t)
	if err != nil {
		return err
	}
	defer raw.stop()
	time.Sleep(time.Second)
	rss0, _ := rssKiB(raw.server.pid())
	cpu0 := cpuOf([]*proc{raw.server})
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Minute)
	defer cancel()
	conns := make([]quicClient, 0, n)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for range n {
		qc, err := dialQUICFrom(ctx, t, raw.udpAddr)
		if err != nil {
			return err
		}
		conns = append(conns, qc)
	}
	cpu1 := cpuOf([]*proc{raw.server})
	time.Sleep(peerSettle)
	rss1, _ := rssKiB(raw.server.pid())
	r.res.add("mem_session", sysQuicRaw, float64(rss1-rss0)/float64(n))
	r.recordStorm(sysQuicRaw, cpu1-cpu0, n)
	return nil
}

// recordStorm records the responder's CPU per session of a storm and the
// handshakes per second one core would sustain at that cost.
func (r *runner) recordStorm(name string, cpuNs int64, sessions int) {
	if sessions == 0 || cpuNs <= 0 {
		return
	}
	per := float64(cpuNs) / float64(sessions)
	r.res.add("storm_cpu", name, per/1e3)
	r.res.add("hs_core", name, 1e9/per)
}
