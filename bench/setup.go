package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Session setup, measured the same way for p2pd and raw quic-go: the time
// from the first handshake packet leaving for the responder to the first
// echoed byte of the first connection, minus the median time of a new
// connection on the then-warm session. What is left is what the session's
// handshakes add to an application's first connection.
//
// A UDP relay sits between the two sides. It holds the initiator's packets
// until the harness's first connection waits for the session (p2pd dials its
// peers as soon as it starts or is told of them) and can delay every packet,
// so the figure is also taken at an emulated network round-trip time.
//
// For p2pd two kinds of cold session are measured: the first session of a
// freshly started pair of daemons, and a new session between daemons that
// are running (A's peer entry for B is removed with `p2pctl reload`, which
// ends the session, and added back, which starts a new one). The second is
// the one compared with quic-go, whose two sides are running processes too.
const warmConns = 20

type setupSample struct {
	setup   time.Duration // cold − warm
	respCPU time.Duration // responder CPU of the handshake (warm share taken off)
	bothCPU time.Duration // both sides; 0 where the initiator's CPU is not separable
}

// p2pdSetup starts a fresh pair behind a relay, takes the first session's
// sample, then n samples of new sessions between the running daemons.
func (r *runner) p2pdSetup(t *topo, be *backend, k pairKeys, delay time.Duration, n int) (first setupSample, running []setupSample, err error) {
	rl, err := newRelay(k.b.listen, delay, true)
	if err != nil {
		return first, nil, err
	}
	defer rl.close()
	sys, err := r.startPair(t, be, k, pairConfig{bAddr: rl.addr()})
	if err != nil {
		return first, nil, err
	}
	defer sys.stop()
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Minute)
	defer cancel()
	if first, err = coldSession(ctx, sys, rl); err != nil {
		return first, nil, fmt.Errorf("first session of a fresh pair: %w", err)
	}
	aConfig := k.a.extra
	for range n {
		if err := k.a.writeConfig(r.o.logLevel, ""); err != nil {
			return first, running, err
		}
		if _, err := r.ctl(ctx, k.a, "reload"); err != nil {
			return first, running, err
		}
		if err := r.waitSessions(ctx, k.b, 0); err != nil {
			return first, running, err
		}
		rl.hold()
		if err := k.a.writeConfig(r.o.logLevel, aConfig); err != nil {
			return first, running, err
		}
		if _, err := r.ctl(ctx, k.a, "reload"); err != nil {
			return first, running, err
		}
		s, err := coldSession(ctx, sys, rl)
		if err != nil {
			return first, running, fmt.Errorf("new session between running daemons: %w", err)
		}
		running = append(running, s)
	}
	return first, running, nil
}

// waitSessions waits until a node reports want sessions.
func (r *runner) waitSessions(ctx context.Context, n *pnode, want int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := r.sessionCount(ctx, n)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s holds %d sessions, want %d (%v)", n.name, got, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// coldSession opens a connection through A's forward while the relay holds
// A's handshake, releases it, and times the first echoed byte.
func coldSession(ctx context.Context, sys *system, rl *relay) (setupSample, error) {
	var c io.ReadWriteCloser
	var err error
	for c == nil {
		if c, err = sys.dial(ctx, targetEcho); err != nil {
			if ctx.Err() != nil {
				return setupSample{}, fmt.Errorf("bench: a's forward never accepted: %w", err)
			}
			c = nil
			time.Sleep(5 * time.Millisecond)
		}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := c.Write([]byte{'x'}); err != nil {
		return setupSample{}, err
	}
	select {
	case <-rl.heldSignal():
	case <-time.After(10 * time.Second):
		return setupSample{}, fmt.Errorf("bench: a sent no handshake to b")
	}
	time.Sleep(30 * time.Millisecond) // the forward has accepted and waits for the session
	a0, b0 := cpuOf([]*proc{sys.client}), cpuOf([]*proc{sys.server})
	t1 := rl.release()
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		return setupSample{}, fmt.Errorf("bench: first connection of the session: %w; a: %s", err, tail(sys.client.logPath, 3))
	}
	cold := time.Since(t1)
	a1, b1 := cpuOf([]*proc{sys.client}), cpuOf([]*proc{sys.server})
	warm, wa, wb, err := warmCost(ctx, sys)
	if err != nil {
		return setupSample{}, err
	}
	return setupSample{
		setup:   cold - warm,
		respCPU: time.Duration(b1-b0) - wb,
		bothCPU: time.Duration(a1-a0+b1-b0) - wa - wb,
	}, nil
}

// warmCost is the median time of a new connection on a live session and the
// mean CPU one costs each side.
func warmCost(ctx context.Context, sys *system) (med, cpuA, cpuB time.Duration, err error) {
	ds := make([]time.Duration, 0, warmConns)
	a0, b0 := cpuOf(procsOrNone(sys.client)), cpuOf(procsOrNone(sys.server))
	for range warmConns {
		t0 := time.Now()
		if err := echoOnce(ctx, sys, 10*time.Second); err != nil {
			return 0, 0, 0, fmt.Errorf("bench: warm connection through %s: %w", sys.name, err)
		}
		ds = append(ds, time.Since(t0))
	}
	a1, b1 := cpuOf(procsOrNone(sys.client)), cpuOf(procsOrNone(sys.server))
	slices.Sort(ds)
	return ds[len(ds)/2], time.Duration(a1-a0) / warmConns, time.Duration(b1-b0) / warmConns, nil
}

func procsOrNone(p *proc) []*proc {
	if p == nil {
		return nil
	}
	return []*proc{p}
}

// quicSetup dials the raw quic-go server through a relay from the harness:
// one QUIC handshake, then one stream echoing a byte.
func (r *runner) quicSetup(raw *system, delay time.Duration) (setupSample, error) {
	rl, err := newRelay(raw.udpAddr, delay, false)
	if err != nil {
		return setupSample{}, err
	}
	defer rl.close()
	ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
	defer cancel()
	s0 := cpuOf([]*proc{raw.server})
	t1 := time.Now()
	qc, err := dialQUICFrom(ctx, loopbackTopo(), rl.addr())
	if err != nil {
		return setupSample{}, err
	}
	defer qc.close()
	sys := &system{name: sysQuicRaw, server: raw.server, dial: quicStreamDialer(qc)}
	if err := echoOnce(ctx, sys, 10*time.Second); err != nil {
		return setupSample{}, err
	}
	cold := time.Since(t1)
	s1 := cpuOf([]*proc{raw.server})
	warm, _, ws, err := warmCost(ctx, sys)
	if err != nil {
		return setupSample{}, err
	}
	return setupSample{setup: cold - warm, respCPU: time.Duration(s1-s0) - ws}, nil
}
