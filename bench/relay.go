package main

import (
	"net"
	"sync"
	"time"
)

// relay is a UDP wire between one client and a server on loopback. It can
// hold the client's packets until release (so that a cold handshake starts
// when the harness says, although the daemon dials as soon as it starts),
// and it can delay every packet by a fixed time in each direction (an
// emulated network round trip of twice that). Packets keep their order.
type relay struct {
	front *net.UDPConn // the client sends here
	back  *net.UDPConn // connected to the server
	delay time.Duration

	mu      sync.Mutex // guards client, holding, held, seen
	client  *net.UDPAddr
	holding bool
	held    [][]byte
	seen    chan struct{} // closed at the first packet held since hold began

	toBack, toFront chan delayed   // with a delay only
	loops           sync.WaitGroup // the two read loops
	senders         sync.WaitGroup // the two delayed senders
}

type delayed struct {
	at time.Time
	b  []byte
}

const relayQueue = 8192

func newRelay(server string, delay time.Duration, hold bool) (*relay, error) {
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, err
	}
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	back, err := net.DialUDP("udp", nil, sa)
	if err != nil {
		front.Close()
		return nil, err
	}
	r := &relay{front: front, back: back, delay: delay}
	if hold {
		r.hold()
	}
	if delay > 0 {
		r.toBack, r.toFront = make(chan delayed, relayQueue), make(chan delayed, relayQueue)
		r.senders.Add(2)
		go r.sender(r.toBack, func(b []byte) { back.Write(b) })
		go r.sender(r.toFront, r.writeFront)
	}
	r.loops.Add(2)
	go r.frontLoop()
	go r.backLoop()
	return r, nil
}

func (r *relay) addr() string { return r.front.LocalAddr().String() }

func (r *relay) frontLoop() {
	defer r.loops.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.front.ReadFromUDP(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		r.client = from
		if r.holding {
			if len(r.held) == 0 {
				close(r.seen)
			}
			r.held = append(r.held, b)
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		r.forward(r.toBack, b, func(b []byte) { r.back.Write(b) })
	}
}

func (r *relay) backLoop() {
	defer r.loops.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := r.back.Read(buf)
		if err != nil {
			return
		}
		r.forward(r.toFront, append([]byte(nil), buf[:n]...), r.writeFront)
	}
}

func (r *relay) writeFront(b []byte) {
	r.mu.Lock()
	c := r.client
	r.mu.Unlock()
	if c != nil {
		r.front.WriteToUDP(b, c)
	}
}

func (r *relay) forward(q chan delayed, b []byte, send func([]byte)) {
	if r.delay <= 0 {
		send(b)
		return
	}
	select {
	case q <- delayed{at: time.Now().Add(r.delay), b: b}:
	default: // a full queue drops, as a router would
	}
}

func (r *relay) sender(q chan delayed, send func([]byte)) {
	defer r.senders.Done()
	for d := range q {
		if w := time.Until(d.at); w > 0 {
			time.Sleep(w)
		}
		send(d.b)
	}
}

// hold makes the relay keep the client's packets from now on. It returns a
// channel closed when the first one arrives.
func (r *relay) hold() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding = true
	r.held = nil
	r.seen = make(chan struct{})
	return r.seen
}

// heldSignal is the channel of the current hold.
func (r *relay) heldSignal() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

// release stops holding, sends what was held (in order, delayed like any
// packet) and returns the moment it did so.
func (r *relay) release() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := time.Now()
	r.holding = false
	for _, b := range r.held {
		r.forward(r.toBack, b, func(b []byte) { r.back.Write(b) })
	}
	r.held = nil
	return t
}

// close stops the relay and waits for its goroutines.
func (r *relay) close() {
	r.front.Close()
	r.back.Close()
	r.loops.Wait()
	if r.toBack != nil {
		close(r.toBack)
		close(r.toFront)
	}
	r.senders.Wait()
}
