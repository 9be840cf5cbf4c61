package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	peerStarters  = 8               // initiator daemons started in parallel
	peerSettle    = 2 * time.Second // after the last session, before RSS is read
	peerMemBudget = 0.6             // of MemAvailable that the initiators may use
)

// idlePeers measures a hub daemon's RSS per idle peer session and its CPU per
// session in the storm that sets them up. Each peer is a real p2pd process
// with its own key that knows the hub's address (and so dials it at start);
// the hub knows the peers by ID only. The same is then done with n raw
// quic-go connections to a fresh quic-go server, as the floor.
func (r *runner) idlePeers(t *topo, n int) error {
	dir := filepath.Join(r.work, "peers")
	hub, err := r.newNode(filepath.Join(dir, "hub"), "hub", t.serverIP)
	if err != nil {
		return err
	}
	r.logf("peers: making %d keys with p2pd init", n)
	nodes, err := r.makeNodes(dir, t.clientIP, n)
	if err != nil {
		return err
	}
	var hubPeers strings.Builder
	for _, p := range nodes {
		hubPeers.WriteString(peerTOML(p.name, p.id, ""))
	}
	if err := hub.writeConfig(r.o.logLevel, hubPeers.String()); err != nil {
		return err
	}
	if err := r.startNode(hub, nil); err != nil {
		return err
	}
	started := []*proc{hub.proc}
	defer func() { stopProcs(started) }()
	for _, p := range nodes { // after the hub is up: its address is final
		if err := p.writeConfig(r.o.logLevel, peerTOML("hub", hub.id, hub.listen)); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	rss0, _ := rssKiB(hub.proc.pid())
	cpu0 := cpuOf([]*proc{hub.proc})

	// Start peers in batches; stop early if the initiators would not fit. A
	// peer that does not start is left out with a note.
	var mu sync.Mutex // guards started, running and failed
	var running []*pnode
	var failed []error
	budget := int64(memAvailableKiB() * peerMemBudget)
	var used int64
	for i := 0; i < len(nodes); i += peerStarters {
		batch := nodes[i:min(i+peerStarters, len(nodes))]
		var wg sync.WaitGroup
		for _, p := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := r.startNode(p, nil)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err)
					return
				}
				started = append(started, p.proc)
				running = append(running, p)
			}()
		}
		wg.Wait()
		if len(failed) > len(nodes)/10 {
			return fmt.Errorf("bench: %d peer daemons did not start: %w", len(failed), failed[0])
		}
		if len(running) > 0 {
			if v, err := rssKiB(running[len(running)-1].proc.pid()); err == nil {
				used = v * int64(len(running)) // the initiators' RSS, estimated from the latest
			}
		}
		if budget > 0 && used > budget && i+peerStarters < len(nodes) {
			r.res.note("peers: stopped at %d initiator daemons: more would not fit in memory", len(running))
			break
		}
	}
	if len(failed) > 0 {
		r.res.note("peers: %d peer daemons did not start and were left out: %v", len(failed), failed[0])
	}
	nodes = running
	want := len(nodes)
	deadline := time.Now().Add(60*time.Second + time.Duration(want)*100*time.Millisecond)
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
	r.res.add("mem_session", sysP2PD, float64(rss1-rss0)/float64(got))
	r.recordStorm(sysP2PD, cpu1-cpu0, got)
	var peerRSS []float64
	for _, p := range nodes {
		if v, err := rssKiB(p.proc.pid()); err == nil {
			peerRSS = append(peerRSS, float64(v))
		}
	}
	slices.Sort(peerRSS)
	r.res.note("idle sessions: hub held %d of %d; hub RSS %d → %d KiB; an initiator daemon with one session has RSS %.1f MiB (median)",
		got, want, rss0, rss1, median(peerRSS)/1024)
	r.logf("peers: hub holds %d/%d sessions, RSS %d→%d KiB", got, want, rss0, rss1)
	return nil
}

// makeNodes makes n peer nodes (keys, IDs), a few at a time.
func (r *runner) makeNodes(dir, ip string, n int) ([]*pnode, error) {
	nodes := make([]*pnode, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("p%04d", i)
			nodes[i], errs[i] = r.newNode(filepath.Join(dir, name), name, ip)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return nodes, nil
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
