package proxy

import (
	"sync"
	"time"
)

// A SOCKS5 CONNECT must be answered before the client sends a byte, so a
// proxy that waits for the service's answer adds an overlay round trip to
// every connection, which a [[forwards]] port does not (it sends the
// client's first bytes along with the stream's header). For a service that
// answered OK within answeredTTL the proxy replies success at once and
// opens the stream early; the service's answer then comes with the first
// Read. The price: a refusal in that window (access revoked by a reload,
// the target just died) reaches the client as a reset after the success
// reply instead of a reply code. It is logged, counted by kind as any
// failure, and ends the shortcut for that service, so the next
// connection waits for the answer and gets the right reply code.

// answeredTTL is how long an OK answer lets new connections to the same
// service skip the wait.
const answeredTTL = 10 * time.Second

// answered remembers which services answered OK lately.
type answered struct {
	mu sync.Mutex
	m  map[target]time.Time
}

// maxAnswered bounds the memory: past it, the oldest half is forgotten.
const maxAnswered = 4096

func (a *answered) ok(t target) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[target]time.Time)
	}
	if len(a.m) >= maxAnswered {
		now := time.Now()
		for k, at := range a.m {
			if now.Sub(at) > answeredTTL/2 {
				delete(a.m, k)
			}
		}
		if len(a.m) >= maxAnswered {
			clear(a.m)
		}
	}
	a.m[t] = time.Now()
}

func (a *answered) recent(t target) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.m[t]
	return ok && time.Since(at) < answeredTTL
}

func (a *answered) forget(t target) {
	a.mu.Lock()
	delete(a.m, t)
	a.mu.Unlock()
}

// earlyAnswer is an early stream whose first Read brings the service's
// answer: a refusal is counted, logged and forgotten (see above).
type earlyAnswer struct {
	Conn
	s    *Server
	l    *proxyListener
	t    target
	peer string // the client's address, for the log
	once sync.Once
}

func (e *earlyAnswer) Read(p []byte) (int, error) {
	n, err := e.Conn.Read(p)
	e.once.Do(func() {
		if n > 0 || err == nil {
			e.s.answered.ok(e.t)
			return
		}
		if k := kindOf(err, e.s.classify); k != KindOther && k != KindTimeout {
			e.s.answered.forget(e.t)
			e.l.count(k)
			e.s.logFailure(KindSOCKS5, e.t, k, e.peer, err)
		}
	})
	return n, err
}
