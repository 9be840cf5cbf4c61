package node

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestLimitLogRateLimit: a peer's limit lines come at most once per
// limitLogEvery, counted on the synctest bubble's clock.
func TestLimitLogRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPeerLimits()
		if !l.shouldLog() {
			t.Fatal("the first limit line was not logged")
		}
		if l.shouldLog() {
			t.Fatal("a second line at once was logged")
		}
		time.Sleep(limitLogEvery - time.Millisecond)
		if l.shouldLog() {
			t.Fatal("a line before the interval ended was logged")
		}
		time.Sleep(time.Millisecond)
		if !l.shouldLog() {
			t.Fatal("no line once the interval ended")
		}
	})
}
