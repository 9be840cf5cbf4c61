package main

import (
	"time"
)

// setupRound takes the session-setup samples of one repetition: p2pd and
// raw quic-go, on plain loopback and at the emulated RTT, alternating which
// goes first.
func (r *runner) setupRound(rep int, t *topo, be *backend, cold pairKeys, raw *system) {
	delays := []time.Duration{0}
	if r.o.setupRTT > 0 {
		delays = append(delays, r.o.setupRTT/2)
	}
	for _, d := range delays {
		p2pdFirst := rep%2 == 0
		for _, p2pd := range []bool{p2pdFirst, !p2pdFirst} {
			if r.ctx.Err() != nil {
				return
			}
			if p2pd {
				first, running, err := r.p2pdSetup(t, be, cold, d, r.o.setupN)
				if d == 0 && first.setup > 0 {
					r.res.add("setup_first", sysP2PD, float64(first.setup)/1e6)
					r.logf("  setup      %-12s first session of a fresh pair %.2f ms", sysP2PD, float64(first.setup)/1e6)
				}
				for _, s := range running {
					r.recordSetup(sysP2PD, s, d)
				}
				if err != nil {
					r.res.note("session setup (p2pd, one-way delay %s): %v", d, err)
					r.logf("  setup      %-12s failed: %v", sysP2PD, err)
				}
				continue
			}
			if raw == nil {
				continue
			}
			for range r.o.setupN {
				s, err := r.quicSetup(raw, d)
				if err != nil {
					r.res.note("session setup (quic-raw, one-way delay %s): %v", d, err)
					r.logf("  setup      %-12s failed: %v", sysQuicRaw, err)
					break
				}
				r.recordSetup(sysQuicRaw, s, d)
			}
		}
	}
}

func (r *runner) recordSetup(name string, s setupSample, delay time.Duration) {
	ms := float64(s.setup) / 1e6
	if delay == 0 {
		r.res.add("setup_lo", name, ms)
		r.res.add("setup_cpu", name, float64(s.respCPU)/1e3)
		if s.bothCPU > 0 {
			r.res.add("setup_cpu_both", name, float64(s.bothCPU)/1e3)
		}
		r.logf("  setup_lo   %-12s %10.2f ms, responder CPU %.0f µs", name, ms, float64(s.respCPU)/1e3)
		return
	}
	r.res.add("setup_rtt", name, ms)
	r.logf("  setup_rtt  %-12s %10.2f ms at RTT %s", name, ms, 2*delay)
}

// memPhase starts each tunnel afresh and holds the open connections.
func (r *runner) memPhase(t *topo, be *backend, keys pairKeys) {
	for _, name := range []string{sysP2PD, sysSOCKS, sysQtun, sysStunnel} {
		if !r.o.wantSystem(name) || r.ctx.Err() != nil {
			continue
		}
		start := name
		if name == sysSOCKS {
			start = sysP2PD // a fresh pair, held through its SOCKS5 proxy
		}
		s, err := r.startSystem(start, t, be, keys)
		if err != nil {
			r.res.note("memory, %s: not measured: %v", name, err)
			continue
		}
		if name == sysSOCKS {
			stop := s.stop
			s = s.socks
			s.stop = stop
		}
		n := r.o.memConns
		if name == sysStunnel && r.o.memStun < n {
			n = r.o.memStun
			r.res.note("memory, stunnel: %d connections (-mem-conns-stunnel), not %d: it runs a thread per connection and opens them slowly; its per-connection figures are in the table, its totals are not", n, r.o.memConns)
		}
		if err := r.memOpenConns(s, n); err != nil {
			r.res.note("memory, %s: %v", name, err)
			r.logf("memory %s: %v", name, err)
		}
		s.stop()
	}
}
