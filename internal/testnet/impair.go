package testnet

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Impairment is what an ImpairedRelay does to each datagram, the same both
// ways. The kernel here has no netem, so delay, jitter, duplication and
// corruption live in this userspace relay (RELIABILITY.md F6, F7, F11).
type Impairment struct {
	Delay  time.Duration // one-way delay of every datagram
	Jitter time.Duration // plus a uniform random 0..Jitter: reorders datagrams
	Dup    float64       // probability that a datagram is sent twice
	Flip   float64       // probability that one random bit of a datagram is flipped
	Drop   float64       // probability that a datagram is dropped
	Seed   uint64        // for the random choices; the same seed, the same choices
}

// ImpairedRelay forwards UDP between one client and a server on loopback,
// impairing every datagram. Stats count what it did.
type ImpairedRelay struct {
	front *net.UDPConn // the client sends here
	imp   Impairment

	mu     sync.Mutex   // guards back, rng and client
	back   *net.UDPConn // connected to the server; Rebind replaces it
	rng    *rand.Rand
	client *net.UDPAddr

	Forwarded, Duplicated, Flipped, Dropped atomic.Int64

	wg   sync.WaitGroup // the read loops and the datagrams in flight
	done chan struct{}
}

// NewImpairedRelay starts a relay to server and returns it; its Addr is what
// the client should send to. The test's cleanup stops it.
func NewImpairedRelay(tb testing.TB, server string, imp Impairment) *ImpairedRelay {
	tb.Helper()
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		tb.Fatal(err)
	}
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, sa)
	if err != nil {
		front.Close()
		tb.Fatal(err)
	}
	r := &ImpairedRelay{front: front, back: back, imp: imp, rng: rand.New(rand.NewPCG(imp.Seed, 1)),
		done: make(chan struct{})}
	r.wg.Add(2)
	go r.loop(front, true)
	go r.loop(back, false)
	tb.Cleanup(r.close)
	return r
}

// Addr is the relay's address for the client.
func (r *ImpairedRelay) Addr() string { return r.front.LocalAddr().String() }

func (r *ImpairedRelay) close() {
	close(r.done)
	r.front.Close()
	r.mu.Lock()
	r.back.Close()
	r.mu.Unlock()
	r.wg.Wait()
}

// Rebind moves the relay's side towards the server to a new port, as a NAT
// does when its mapping expires or it reboots: the server sees the client
// come from a new address, and what it still sends to the old one is lost.
func (r *ImpairedRelay) Rebind() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	back, err := net.DialUDP("udp", nil, r.back.RemoteAddr().(*net.UDPAddr))
	if err != nil {
		return err
	}
	r.back.Close()
	r.back = back
	r.wg.Add(1)
	go r.loop(back, false)
	return nil
}

// loop reads datagrams from one side and schedules them to the other.
func (r *ImpairedRelay) loop(c *net.UDPConn, fromClient bool) {
	defer r.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		if fromClient {
			r.client = from
		}
		to := r.client
		drop, dup := r.rng.Float64() < r.imp.Drop, r.rng.Float64() < r.imp.Dup
		copies := 1
		if dup {
			copies = 2
		}
		var delays [2]time.Duration
		var flips [2]int
		for i := range copies {
			delays[i] = r.imp.Delay
			if r.imp.Jitter > 0 {
				delays[i] += time.Duration(r.rng.Int64N(int64(r.imp.Jitter)))
			}
			flips[i] = -1
			if r.rng.Float64() < r.imp.Flip {
				flips[i] = r.rng.IntN(n * 8)
			}
		}
		r.mu.Unlock()
		if drop || (!fromClient && to == nil) {
			r.Dropped.Add(1)
			continue
		}
		if dup {
			r.Duplicated.Add(1)
		}
		for i := range copies {
			b := append([]byte(nil), buf[:n]...)
			if flips[i] >= 0 {
				b[flips[i]/8] ^= 1 << (flips[i] % 8)
				r.Flipped.Add(1)
			}
			r.send(b, delays[i], fromClient, to)
		}
	}
}

func (r *ImpairedRelay) send(b []byte, after time.Duration, toServer bool, client *net.UDPAddr) {
	write := func() {
		if toServer {
			r.mu.Lock()
			back := r.back
			r.mu.Unlock()
			back.Write(b)
		} else {
			r.front.WriteToUDP(b, client)
		}
		r.Forwarded.Add(1)
	}
	if after <= 0 {
		write()
		return
	}
	r.wg.Add(1)
	time.AfterFunc(after, func() {
		defer r.wg.Done()
		select {
		case <-r.done:
		default:
			write()
		}
	})
}

// SetDrop changes the share of datagrams dropped from now on: 1 for a path
// that carries no UDP, 0 when it comes back.
func (r *ImpairedRelay) SetDrop(p float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.imp.Drop = p
}
