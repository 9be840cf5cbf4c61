package proxy

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestFailLogRateLimit: a forward logs one line per kind of failure per
// failLogEvery; the next line after a quiet interval carries the count of
// those not logged, and kinds do not share an interval. It runs in a
// synctest bubble, so the interval passes without waiting for it.
func TestFailLogRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c failCounts
		if due, n := c.due(KindTimeout); !due || n != 0 {
			t.Fatalf("first failure: due %v, %d not logged; want a line", due, n)
		}
		for i := range 3 {
			if due, _ := c.due(KindTimeout); due {
				t.Fatalf("failure %d within the interval was logged", i+2)
			}
		}
		if due, n := c.due(KindAccessDenied); !due || n != 0 {
			t.Fatalf("another kind: due %v, %d; want its own first line", due, n)
		}
		time.Sleep(failLogEvery - time.Millisecond)
		if due, _ := c.due(KindTimeout); due {
			t.Fatal("logged before the interval ended")
		}
		time.Sleep(time.Millisecond)
		if due, n := c.due(KindTimeout); !due || n != 4 {
			t.Fatalf("after the interval: due %v, %d not logged; want a line saying 4", due, n)
		}
		if due, n := c.due(KindTimeout); due || n != 0 {
			t.Fatalf("right after that line: due %v, %d", due, n)
		}
	})
}
