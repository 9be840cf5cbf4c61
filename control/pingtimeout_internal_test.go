package control

import (
	"context"
	"testing"
	"time"
)

// deadlineBackend records how long the ping's context gave it.
type deadlineBackend struct {
	nopBackend
	got chan time.Duration
}

func (b deadlineBackend) Ping(ctx context.Context, _ string) (PingResult, error) {
	d, ok := ctx.Deadline()
	if !ok {
		b.got <- -1
	} else {
		b.got <- time.Until(d)
	}
	return PingResult{}, nil
}

// TestPingTimeoutHonoured: the daemon gives a ping the timeout the client
// asked for (p2pctl ping --timeout), not a fixed one, and the default
// without one; an out-of-range timeout is a bad request.
func TestPingTimeoutHonoured(t *testing.T) {
	b := deadlineBackend{got: make(chan time.Duration, 1)}
	c := NewClient(serveInternal(t, NewServer(b, nil)))
	ctx := context.Background()
	for _, tt := range []struct{ ask, want time.Duration }{{30 * time.Second, 30 * time.Second}, {0, DefaultPingTimeout}, {time.Second, time.Second}} {
		if _, err := c.PingWithin(ctx, "peer", tt.ask); err != nil {
			t.Fatal(err)
		}
		if got := <-b.got; got > tt.want || got < tt.want-2*time.Second {
			t.Fatalf("asked for %v: the backend got %v, want about %v", tt.ask, got, tt.want)
		}
	}
	if _, err := c.PingWithin(ctx, "peer", time.Hour); err == nil {
		t.Fatal("a one-hour ping timeout was accepted")
	}
}
