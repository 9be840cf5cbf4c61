package attack

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// DialsConfig configures the trusted peer's measurement: Count new
// sessions with the victim, one started every Interval, each on a fresh
// endpoint (a fresh UDP port and daemon instance), each given Timeout.
type DialsConfig struct {
	Key      identity.PrivateKey // a key the victim trusts
	Peer     identity.PeerID     // the victim
	Target   string              // the victim's "ip:port"
	Local    string              // the local IP to dial from
	Count    int
	Interval time.Duration
	Timeout  time.Duration
}

// Dial is one new session's outcome.
type Dial struct {
	At      time.Duration `json:"at_ns"` // since the first dial started
	Latency time.Duration `json:"latency_ns"`
	Err     string        `json:"err,omitempty"`
}

// DialsResult is the trusted peer's measurement.
type DialsResult struct {
	OK    int           `json:"ok"`
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	// P90 counts failed dials as taking the timeout.
	P90   time.Duration `json:"p90_ns"`
	Dials []Dial        `json:"dials"`
}

// Dials makes the sessions and times them; dials overlap when one takes
// longer than Interval.
func Dials(ctx context.Context, cfg DialsConfig) (DialsResult, error) {
	if cfg.Key.IsZero() || cfg.Peer.IsZero() || cfg.Count <= 0 || cfg.Count > 1000 || cfg.Timeout <= 0 {
		return DialsResult{}, errors.New("attack: dials needs a key, the victim's ID, a count up to 1000 and a timeout")
	}
	res := DialsResult{Count: cfg.Count, Dials: make([]Dial, cfg.Count)}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.Count {
		if i > 0 {
			sleepCtx(ctx, time.Until(start.Add(time.Duration(i)*cfg.Interval)))
		}
		at := time.Since(start)
		wg.Go(func() {
			lat, err := dialOnce(ctx, cfg)
			d := Dial{At: at, Latency: lat}
			if err != nil {
				d.Err = shortErr(err)
			}
			res.Dials[i] = d // each goroutine writes its own element
		})
	}
	wg.Wait()
	lats := make([]time.Duration, 0, cfg.Count)
	for _, d := range res.Dials {
		if d.Err == "" {
			res.OK++
			lats = append(lats, d.Latency)
		} else {
			lats = append(lats, max(d.Latency, cfg.Timeout))
		}
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	res.P50 = lats[len(lats)/2]
	res.P90 = lats[(len(lats)*9+9)/10-1]
	return res, nil
}

// dialOnce sets up one session on a fresh endpoint, times it, and closes
// it and the endpoint.
func dialOnce(ctx context.Context, cfg DialsConfig) (time.Duration, error) {
	var inst [8]byte
	rand.Read(inst[:])
	ep, err := transport.Listen(transport.Config{
		Key: cfg.Key, Listen: []string{net.JoinHostPort(cfg.Local, "0")}, Name: "trusted",
		Instance:         binary.LittleEndian.Uint64(inst[:]),
		Trust:            func([32]byte) (identity.PeerID, bool) { return identity.PeerID{}, false },
		Logger:           slog.New(slog.DiscardHandler),
		HandshakeTimeout: cfg.Timeout,
	})
	if err != nil {
		return 0, err
	}
	defer ep.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	t0 := time.Now()
	s, err := ep.Dial(ctx, cfg.Peer, cfg.Target)
	lat := time.Since(t0)
	if err != nil {
		return lat, err
	}
	s.Close(transport.CodeNormal)
	return lat, nil
}
