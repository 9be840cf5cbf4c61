package node

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// fakeDial is one carrier's dial in a carrierRace test: it records when it
// started (on the bubble's clock) and with which context, then answers
// after its delay, or fails with ctx's error when ctx ends first (unless
// deaf, which answers regardless, as a handshake past its last step does).
type fakeDial struct {
	after time.Duration // 0: never answers by itself
	err   error         // the answer: this error, or the session s
	s     *transport.Session
	deaf  bool

	mu      sync.Mutex
	started time.Duration // -1 until the dial starts
	ctx     context.Context
}

// start reports when the dial started (-1: not yet) and its context.
func (f *fakeDial) start() (time.Duration, context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started, f.ctx
}

func newFakeDial(after time.Duration, err error) *fakeDial {
	// A zero Session serves as a token: the race only hands it on.
	return &fakeDial{after: after, err: err, s: new(transport.Session), started: -1}
}

func (f *fakeDial) dial(t0 time.Time) func(context.Context) (*transport.Session, error) {
	return func(ctx context.Context) (*transport.Session, error) {
		f.mu.Lock()
		f.started, f.ctx = time.Since(t0), ctx
		f.mu.Unlock()
		var timer <-chan time.Time
		if f.after > 0 {
			timer = time.After(f.after)
		}
		done := ctx.Done()
		if f.deaf {
			done = nil
		}
		select {
		case <-timer:
		case <-done:
			return nil, ctx.Err()
		}
		if f.err != nil {
			return nil, f.err
		}
		return f.s, nil
	}
}

// raceSetup is one carrierRace over two fake dials, with what it dropped.
type raceSetup struct {
	quic, tcp *fakeDial
	t0        time.Time

	mu      sync.Mutex
	dropped []*transport.Session
}

func (rs *raceSetup) race() carrierRace {
	rs.t0 = time.Now()
	return carrierRace{quic: rs.quic.dial(rs.t0), tcp: rs.tcp.dial(rs.t0), delay: HappyEyeballsDelay,
		drop: func(s *transport.Session) {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			rs.dropped = append(rs.dropped, s)
		}}
}

// TestCarrierRace runs the happy-eyeballs race of an "auto" dial on the
// synctest bubble's clock: when TCP starts, who wins, what goes on after.
func TestCarrierRace(t *testing.T) {
	errQUIC, errTCP := errors.New("quic: no answer"), errors.New("tcp: refused")

	t.Run("QUIC first: TCP never starts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := &raceSetup{quic: newFakeDial(100*time.Millisecond, nil), tcp: newFakeDial(time.Millisecond, nil)}
			won, err := rs.race().run(t.Context(), t.Context())
			if err != nil || won.s != rs.quic.s || won.late != nil || won.reason != "" {
				t.Fatalf("race = %+v, %v; want QUIC's session alone", won, err)
			}
			if d := time.Since(rs.t0); d != 100*time.Millisecond {
				t.Fatalf("the race took %v; QUIC answered at 100ms", d)
			}
			time.Sleep(time.Second)
			if at, _ := rs.tcp.start(); at != -1 {
				t.Fatalf("TCP started at %v though QUIC won first", at)
			}
			if _, qctx := rs.quic.start(); qctx.Err() == nil {
				t.Fatal("QUIC's dial context outlived the race it won")
			}
		})
	})

	t.Run("QUIC silent: TCP after the delay, QUIC goes on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := &raceSetup{quic: newFakeDial(0, nil), tcp: newFakeDial(10*time.Millisecond, nil)}
			won, err := rs.race().run(t.Context(), t.Context())
			if err != nil || won.s != rs.tcp.s {
				t.Fatalf("race = %+v, %v; want TCP's session", won, err)
			}
			if at, _ := rs.tcp.start(); at != HappyEyeballsDelay {
				t.Fatalf("TCP started at %v; want exactly %v", at, HappyEyeballsDelay)
			}
			if !strings.Contains(won.reason, "did not complete within 300ms") {
				t.Fatalf("reason %q", won.reason)
			}
			if _, qctx := rs.quic.start(); won.late == nil || qctx.Err() != nil {
				t.Fatal("QUIC's dial did not go on after TCP won")
			}
			won.stop()
			if r := <-won.late; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("QUIC's late outcome after stop: %+v", r)
			}
		})
	})

	t.Run("QUIC late success is handed on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := &raceSetup{quic: newFakeDial(2*time.Second, nil), tcp: newFakeDial(10*time.Millisecond, nil)}
			won, err := rs.race().run(t.Context(), t.Context())
			if err != nil || won.s != rs.tcp.s || won.late == nil {
				t.Fatalf("race = %+v, %v; want TCP's session and QUIC going on", won, err)
			}
			r := <-won.late
			if r.err != nil || r.s != rs.quic.s || time.Since(rs.t0) != 2*time.Second {
				t.Fatalf("late QUIC = %+v at %v; want its session at 2s", r, time.Since(rs.t0))
			}
		})
	})

	t.Run("QUIC fails early: TCP at once, no late QUIC", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := &raceSetup{quic: newFakeDial(50*time.Millisecond, errQUIC), tcp: newFakeDial(10*time.Millisecond, nil)}
			won, err := rs.race().run(t.Context(), t.Context())
			if err != nil || won.s != rs.tcp.s {
				t.Fatalf("race = %+v, %v; want TCP's session", won, err)
			}
			if at, _ := rs.tcp.start(); at != 50*time.Millisecond {
				t.Fatalf("TCP started at %v; want at QUIC's failure, 50ms", at)
			}
			if won.reason != "QUIC failed: "+errQUIC.Error() {
				t.Fatalf("reason %q", won.reason)
			}
			// QUIC's dial is over: nothing may wait for a second outcome
			// of it (that wait would never end, and hold the node's Close).
			if won.late != nil {
				t.Fatal("a late QUIC outcome is promised for a dial that already failed")
			}
		})
	})

	t.Run("both fail", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := &raceSetup{quic: newFakeDial(time.Second, errQUIC), tcp: newFakeDial(20*time.Millisecond, errTCP)}
			_, err := rs.race().run(t.Context(), t.Context())
			var ce *carrierErrors
			if !errors.As(err, &ce) || !errors.Is(err, errQUIC) || !errors.Is(err, errTCP) {
				t.Fatalf("err = %v; want both carriers' errors", err)
			}
			if d := time.Since(rs.t0); d != time.Second {
				t.Fatalf("the race ended at %v; want when the last carrier failed, 1s", d)
			}
		})
	})

	t.Run("QUIC wins after TCP started: TCP cancelled, dropped if it lands", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := &raceSetup{quic: newFakeDial(400*time.Millisecond, nil), tcp: newFakeDial(time.Second, nil)}
			rs.tcp.deaf = true // its handshake completes despite the cancel
			won, err := rs.race().run(t.Context(), t.Context())
			if err != nil || won.s != rs.quic.s || won.late != nil {
				t.Fatalf("race = %+v, %v; want QUIC's session", won, err)
			}
			if _, tctx := rs.tcp.start(); tctx.Err() == nil {
				t.Fatal("TCP's dial was not cancelled when QUIC won")
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if len(rs.dropped) != 1 || rs.dropped[0] != rs.tcp.s {
				t.Fatalf("dropped %v; want TCP's late session", rs.dropped)
			}
		})
	})

	t.Run("the caller gives up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := &raceSetup{quic: newFakeDial(0, nil), tcp: newFakeDial(0, nil)}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			_, err := rs.race().run(ctx, t.Context())
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v; want the caller's deadline", err)
			}
			_, qctx := rs.quic.start()
			_, tctx := rs.tcp.start()
			if time.Since(rs.t0) != time.Second || qctx.Err() == nil || tctx.Err() == nil {
				t.Fatal("the race did not end both dials at the caller's deadline")
			}
		})
	})
}

// TestBackoff: the maintainer's waits between failed dials double from
// minBackoff to maxBackoff, each drawn from the upper half of its step
// (spread, not fixed), and start over after a session came up.
func TestBackoff(t *testing.T) {
	steps := []time.Duration{minBackoff}
	for steps[len(steps)-1] < maxBackoff {
		steps = append(steps, min(2*steps[len(steps)-1], maxBackoff))
	}
	steps = append(steps, maxBackoff, maxBackoff) // it stays at the cap
	lo, hi := maxBackoff, time.Duration(0)        // the waits at the cap, over all rounds
	var b backoff
	for round := range 200 {
		for i, step := range steps {
			w := b.next()
			if w < step/2 || w > step {
				t.Fatalf("round %d, wait %d: %v outside [%v, %v]", round, i, w, step/2, step)
			}
			if step == maxBackoff {
				lo, hi = min(lo, w), max(hi, w)
			}
		}
		b.reset()
		if w := b.next(); w < minBackoff/2 || w > minBackoff {
			t.Fatalf("after reset the wait is %v; want within [%v, %v]", w, minBackoff/2, minBackoff)
		}
		b.reset()
	}
	if hi-lo < maxBackoff/4 {
		t.Fatalf("waits at the cap ranged only over [%v, %v]: no jitter", lo, hi)
	}
}
