package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/internal/buildinfo"
	"github.com/p2pd/p2pd/metrics"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// metricsEndpoint is the [metrics] listener and the registry it serves. A
// nil *metricsEndpoint (metrics off) does nothing.
type metricsEndpoint struct {
	m   *metrics.Metrics
	ln  net.Listener
	log *slog.Logger
}

// openMetrics binds [metrics] listen and hooks the registry to the
// transport's handshakes (tc is the node's transport config, before
// node.New). It returns nil when metrics are off.
func openMetrics(cfg *config.Config, tc *transport.Config, log *slog.Logger) (*metricsEndpoint, error) {
	if cfg.Metrics.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen(proxy.ListenNetwork("tcp", cfg.Metrics.Listen), cfg.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", cfg.Metrics.Listen, err)
	}
	m := metrics.New(buildInfo(), log)
	tc.OnHandshake = m.ObserveHandshake
	return &metricsEndpoint{m: m, ln: ln, log: log}, nil
}

// start makes scrapes read d and serves them until ctx ends, on a goroutine
// that wg waits for.
func (e *metricsEndpoint) start(ctx context.Context, wg *sync.WaitGroup, d *daemon) {
	if e == nil {
		return
	}
	e.m.SetSource(metrics.SourceFunc(d.metricsSnapshot))
	e.log.Info("serving metrics", "listen", "http://"+e.ln.Addr().String()+metrics.Path)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.m.Serve(ctx, e.ln); err != nil {
			e.log.Error("metrics endpoint stopped", "err", err)
		}
	}()
}

// close closes the listener, for a start-up that fails before start;
// after Serve has closed it, it does nothing.
func (e *metricsEndpoint) close() {
	if e != nil {
		e.ln.Close()
	}
}

func buildInfo() metrics.Build {
	return metrics.Build{Version: buildinfo.Version, Commit: buildinfo.Commit(), GoVersion: runtime.Version()}
}

// metricsSnapshot is what a scrape reads: the node's sessions and stream
// counters, the forwards' and proxies' counters.
func (d *daemon) metricsSnapshot() metrics.Snapshot {
	var s metrics.Snapshot
	for _, ss := range d.node.Sessions() {
		s.Sessions = append(s.Sessions, metrics.Session{Peer: ss.Peer, Carrier: ss.Carrier, Path: ss.Path, Stats: true,
			RTT: ss.Stats.RTT, PacketsLost: ss.Stats.PacketsLost, BytesSent: ss.Stats.BytesSent, BytesReceived: ss.Stats.BytesReceived})
	}
	for _, c := range d.node.StreamCounts() {
		s.Streams = append(s.Streams, metrics.StreamCount{Service: c.Service, Result: c.Result, Count: c.Count})
	}
	for _, b := range d.node.ByteCounts() {
		s.Bytes = append(s.Bytes, metrics.ByteCount{Peer: b.Peer, Service: b.Service, Received: b.Received, Sent: b.Sent})
	}
	for _, c := range d.node.DatagramCounts() {
		s.Datagrams = append(s.Datagrams, metrics.DatagramCount{Peer: c.Peer, Service: c.Service, Received: c.Received, Sent: c.Sent, Dropped: c.Dropped})
	}
	for _, f := range d.fwd.Stats() {
		s.Forwards = append(s.Forwards, metrics.Forward{Listen: f.Listen, Protocol: cmp.Or(f.Protocol, proxy.ProtocolTCP),
			Active: f.Active, Total: f.Total, Refused: f.Refused, Errors: f.Errors})
	}
	for _, l := range d.prx.Stats() {
		s.Proxies = append(s.Proxies, metrics.Proxy{Listener: l.Kind, Active: l.Active, Total: l.Total, Refused: l.Refused, Errors: l.Errors})
	}
	return s
}
