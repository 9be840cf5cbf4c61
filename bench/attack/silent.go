package attack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// SilentConfig configures the silent-handshake attack.
type SilentConfig struct {
	Target    netip.AddrPort
	Sources   []netip.Addr // local addresses to send from, one UDP socket each
	PerSource int          // connections each source keeps open
	Duration  time.Duration
	// Redial is the pause before a worker dials again after the server
	// closed its connection (default 100 ms), so that a server that closes
	// at once does not turn the attack into a busy loop on the test machine.
	Redial time.Duration
	// Started, if set, is called once every source's socket is open.
	Started func()
}

// SilentResult is what the silent-handshake attack did and what the server
// did to it.
type SilentResult struct {
	Sources      int `json:"sources"`
	PerSource    int `json:"per_source"`
	Handshakes   int `json:"handshakes"`    // QUIC handshakes completed
	DialFailures int `json:"dial_failures"` // QUIC handshakes that did not complete
	// ServerCloses counts connections the server ended; Lifetimes are
	// their times from handshake to close (p50 and max).
	ServerCloses int            `json:"server_closes"`
	CloseCodes   map[string]int `json:"close_codes"`
	LifetimeP50  time.Duration  `json:"lifetime_p50_ns"`
	LifetimeMax  time.Duration  `json:"lifetime_max_ns"`
	MaxOpen      int            `json:"max_open"` // most connections open at once
	DialErrors   map[string]int `json:"dial_errors,omitempty"`
	Elapsed      time.Duration  `json:"elapsed_ns"`
}

// silentState is the attack's shared tally.
type silentState struct {
	mu        sync.Mutex // guards everything below
	res       SilentResult
	open      int
	lifetimes []time.Duration
}

func (s *silentState) dialFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.res.DialFailures++
	k := shortErr(err)
	if len(s.res.DialErrors) < 16 || s.res.DialErrors[k] > 0 {
		s.res.DialErrors[k]++
	}
}

func (s *silentState) opened() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.res.Handshakes++
	s.open++
	s.res.MaxOpen = max(s.res.MaxOpen, s.open)
}

func (s *silentState) closed(byServer bool, code string, life time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if byServer {
		s.res.ServerCloses++
		s.res.CloseCodes[code]++
		s.lifetimes = append(s.lifetimes, life)
	}
}

// attackQUICConfig is the QUIC configuration of the attacking clients: the
// same initial packet size as p2pd, keep-alives so that the attacker's
// side never idles out first.
func attackQUICConfig(handshake time.Duration) *quic.Config {
	return &quic.Config{
		InitialPacketSize:    InitialSize,
		HandshakeIdleTimeout: handshake,
		MaxIdleTimeout:       time.Minute,
		KeepAlivePeriod:      5 * time.Second,
	}
}

// transports opens one quic.Transport per source address.
func transports(sources []netip.Addr) ([]*quic.Transport, func(), error) {
	var trs []*quic.Transport
	closeAll := func() {
		for _, tr := range trs {
			tr.Close()
			tr.Conn.Close()
		}
	}
	for _, src := range sources {
		uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("attack: source %v: %w", src, err)
		}
		trs = append(trs, &quic.Transport{Conn: uc})
	}
	return trs, closeAll, nil
}

// Silent completes QUIC handshakes with the target from every source and
// sends nothing more, keeping PerSource connections per source open: when
// the server closes one, it dials again. It returns after Duration.
func Silent(ctx context.Context, cfg SilentConfig) (SilentResult, error) {
	if len(cfg.Sources) == 0 || cfg.PerSource <= 0 || cfg.Duration <= 0 || cfg.Duration > 10*time.Minute {
		return SilentResult{}, errors.New("attack: silent needs sources, a per-source count and a duration up to 10m")
	}
	if cfg.Redial <= 0 {
		cfg.Redial = 100 * time.Millisecond
	}
	trs, closeAll, err := transports(cfg.Sources)
	if err != nil {
		return SilentResult{}, err
	}
	defer closeAll()
	st := &silentState{res: SilentResult{Sources: len(cfg.Sources), PerSource: cfg.PerSource,
		CloseCodes: map[string]int{}, DialErrors: map[string]int{}}}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	if cfg.Started != nil {
		cfg.Started()
	}
	start := time.Now()
	var wg sync.WaitGroup
	target := net.UDPAddrFromAddrPort(cfg.Target)
	for _, tr := range trs {
		for range cfg.PerSource {
			wg.Go(func() { silentWorker(ctx, tr, target, cfg.Redial, st) })
		}
	}
	wg.Wait()
	st.res.Elapsed = time.Since(start)
	sort.Slice(st.lifetimes, func(i, j int) bool { return st.lifetimes[i] < st.lifetimes[j] })
	if n := len(st.lifetimes); n > 0 {
		st.res.LifetimeP50, st.res.LifetimeMax = st.lifetimes[n/2], st.lifetimes[n-1]
	}
	if len(st.res.DialErrors) == 0 {
		st.res.DialErrors = nil
	}
	return st.res, nil
}

// silentWorker keeps one silent connection open from tr until ctx is done.
func silentWorker(ctx context.Context, tr *quic.Transport, target net.Addr, redial time.Duration, st *silentState) {
	for ctx.Err() == nil {
		conn, err := tr.Dial(ctx, target, clientTLS(), attackQUICConfig(5*time.Second))
		if err != nil {
			if ctx.Err() == nil {
				st.dialFailed(err)
				sleepCtx(ctx, redial)
			}
			continue
		}
		st.opened()
		up := time.Now()
		select {
		case <-conn.Context().Done():
			st.closed(true, closeCode(context.Cause(conn.Context())), time.Since(up))
			sleepCtx(ctx, redial)
		case <-ctx.Done():
			conn.CloseWithError(0, "")
			st.closed(false, "", 0)
		}
	}
}

// closeCode names how the server ended a connection.
func closeCode(err error) string {
	var ae *quic.ApplicationError
	var ie *quic.IdleTimeoutError
	var te *quic.TransportError
	var sr *quic.StatelessResetError
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("app:%#x", uint64(ae.ErrorCode))
	case errors.As(err, &ie):
		return "idle timeout"
	case errors.As(err, &sr):
		return "stateless reset"
	case errors.As(err, &te):
		return fmt.Sprintf("transport:%#x", uint64(te.ErrorCode))
	case err == nil:
		return "none"
	default:
		return shortErr(err)
	}
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
