package main

import (
	"context"
	"fmt"
	"time"
)

// rrClients are the numbers of concurrent connections of the
// request/response figures.
var rrClients = []int{8, 32}

// startSystems starts every wanted system in table order; one that fails to
// start is left out with a note.
func (r *runner) startSystems(t *topo, be *backend, keys pairKeys) []*system {
	var out []*system
	for _, name := range systemOrder {
		if !r.o.wantSystem(name) || name == sysSOCKS { // sysSOCKS comes with sysP2PD
			continue
		}
		s, err := r.startSystem(name, t, be, keys)
		if err != nil {
			r.res.note("%s (%s): not measured: %v", name, t.name, err)
			r.logf("%s (%s): not measured: %v", name, t.name, err)
			continue
		}
		r.logf("%s (%s): up", name, t.name)
		out = append(out, s)
		if s.socks != nil && r.o.wantSystem(sysSOCKS) {
			out = append(out, s.socks)
		}
	}
	return out
}

func (r *runner) startSystem(name string, t *topo, be *backend, keys pairKeys) (*system, error) {
	switch name {
	case sysP2PD:
		return r.startPair(t, be, keys, pairConfig{wait: true})
	case sysP2PDTCP:
		tcpKeys, err := r.makePairKeys(t, "tcp-")
		if err != nil {
			return nil, err
		}
		return r.startPair(t, be, tcpKeys, pairConfig{wait: true, transport: "tcp"})
	case sysTCP:
		return newTCPSystem(t, be), nil
	case sysQuicRaw:
		return r.newQuicRaw(t)
	case sysQtun:
		return r.newQtun(t, be)
	default:
		return r.newStunnel(t, be)
	}
}

// warmup moves some bytes and opens some connections through each system
// before anything is measured.
func (r *runner) warmup(systems []*system) {
	for _, s := range full(systems) {
		ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
		if _, err := measureBulk(ctx, s, 16<<20, 1); err != nil {
			r.res.note("%s: warm-up bulk failed: %v", s.name, err)
		}
		if _, _, err := measureRTT(ctx, s, 1000); err != nil {
			r.res.note("%s: warm-up echo failed: %v", s.name, err)
		}
		cancel()
	}
}

// full leaves out the systems that take the new-connection figures only.
func full(systems []*system) []*system {
	var out []*system
	for _, s := range systems {
		if !s.connOnly {
			out = append(out, s)
		}
	}
	return out
}

// rotate gives the systems in an order that moves by one each repetition.
func rotate(systems []*system, rep int) []*system {
	if len(systems) == 0 {
		return nil
	}
	k := rep % len(systems)
	return append(append([]*system{}, systems[k:]...), systems[:k]...)
}

// measureRound takes every figure once for every system, figure by figure,
// the systems in rotated order.
func (r *runner) measureRound(rep int, systems []*system, prefix string, conns bool) {
	all := rotate(systems, rep)
	order := full(all)
	total := int64(r.o.bulkMiB) << 20
	for _, s := range order {
		r.try(prefix+"bulk1", s, 2*time.Minute, func(ctx context.Context) error {
			c0 := cpuTotalOf(s.procs())
			v, err := measureBulk(ctx, s, total, 1)
			if err != nil {
				return err
			}
			r.record(prefix+"bulk1", s, v, "MiB/s")
			if prefix == "" && s.client != nil && s.server != nil {
				cpu := float64(cpuTotalOf(s.procs())-c0) / 1e9
				r.res.add("cpu_gib", s.name, cpu/(float64(total)/(1<<30)))
			}
			return nil
		})
	}
	for _, s := range order {
		r.try(prefix+"bulk8", s, 2*time.Minute, func(ctx context.Context) error {
			v, err := measureBulk(ctx, s, total, 8)
			if err == nil {
				r.record(prefix+"bulk8", s, v, "MiB/s")
			}
			return err
		})
	}
	for _, s := range order {
		r.try(prefix+"rtt", s, 2*time.Minute, func(ctx context.Context) error {
			p50, p99, err := measureRTT(ctx, s, r.o.rttCount)
			if err == nil {
				r.recordLatency(prefix+"rtt", s, p50, p99)
			}
			return err
		})
	}
	rrDur := time.Duration(r.o.rrSecs * float64(time.Second))
	for _, clients := range rrClients {
		fig := fmt.Sprintf("%srr%d", prefix, clients)
		for _, s := range order {
			r.try(fig, s, rrDur+time.Minute, func(ctx context.Context) error {
				rate, p50, p99, err := measureRR(ctx, s, clients, rrDur)
				if err == nil {
					r.record(fig, s, rate, "round trips/s")
					r.recordLatency(fig, s, p50, p99)
				}
				return err
			})
		}
	}
	if !conns {
		return
	}
	dur := time.Duration(r.o.connSecs * float64(time.Second))
	for _, par := range []int{1, 8} {
		fig := prefix + "conn_seq"
		if par > 1 {
			fig = prefix + "conn_par8"
		}
		for _, s := range all {
			if !s.connRate {
				continue
			}
			r.try(fig, s, dur+time.Minute, func(ctx context.Context) error {
				v, failed, err := measureConnRate(ctx, s, dur, par)
				if err != nil {
					return err
				}
				if failed > 0 {
					r.res.note("%s, %s, repetition %d: %d connections failed", fig, s.name, rep+1, failed)
				}
				r.record(fig, s, v, "conn/s")
				return nil
			})
		}
	}
}

func (r *runner) record(fig string, s *system, v float64, unit string) {
	r.res.add(fig, s.name, v)
	r.logf("  %-10s %-12s %10.1f %s", fig, s.name, v, unit)
}

// recordLatency records a p50 and a p99 in µs as figures fig_p50 and fig_p99.
func (r *runner) recordLatency(fig string, s *system, p50, p99 float64) {
	r.record(fig+"_p50", s, p50, "µs")
	r.record(fig+"_p99", s, p99, "µs")
}

// try runs one measurement with a time limit; a failure is noted, not fatal.
func (r *runner) try(fig string, s *system, limit time.Duration, f func(context.Context) error) {
	if r.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, limit)
	defer cancel()
	if err := f(ctx); err != nil {
		r.res.note("%s, %s: %v", fig, s.name, err)
		r.logf("  %-10s %-12s failed: %v", fig, s.name, err)
	}
}
