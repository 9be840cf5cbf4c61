package discovery

import (
	"context"
	"sync"

	"github.com/p2pd/p2pd/identity"
)

// Sizes of the record stream.
const (
	recordsBuffer = 64   // capacity of the Records channel
	maxPending    = 4096 // distinct (peer, source) pairs waiting beyond it
)

type recordKey struct {
	peer   identity.PeerID
	source Source
}

// emitter feeds Records. Producers never block: a record waits in a queue
// that keeps only the newest record per (peer, source), so a slow reader
// sees current addresses, not a backlog. One goroutine, run, moves records
// to the channel and closes it when the context ends.
type emitter struct {
	out  chan Record
	wake chan struct{} // capacity 1: "the queue may be non-empty"

	mu      sync.Mutex // guards order and latest
	order   []recordKey
	latest  map[recordKey]Record
	dropped int
}

func newEmitter() *emitter {
	return &emitter{
		out:    make(chan Record, recordsBuffer),
		wake:   make(chan struct{}, 1),
		latest: map[recordKey]Record{},
	}
}

// push queues r, replacing a queued record of the same peer and source. It
// reports false when the queue is full and r was dropped.
func (e *emitter) push(r Record) bool {
	if len(r.Addrs) == 0 || r.Peer.IsZero() {
		return true
	}
	r.Addrs = append([]string(nil), r.Addrs...)
	k := recordKey{r.Peer, r.Source}
	e.mu.Lock()
	_, queued := e.latest[k]
	if !queued && len(e.order) >= maxPending {
		e.dropped++
		e.mu.Unlock()
		return false
	}
	if !queued {
		e.order = append(e.order, k)
	}
	e.latest[k] = r
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return true
}

func (e *emitter) pop() (Record, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.order) == 0 {
		return Record{}, false
	}
	k := e.order[0]
	e.order = e.order[1:]
	r := e.latest[k]
	delete(e.latest, k)
	return r, true
}

// run delivers queued records until ctx ends, then closes the channel.
func (e *emitter) run(ctx context.Context) {
	defer close(e.out)
	for {
		r, ok := e.pop()
		if !ok {
			select {
			case <-e.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case e.out <- r:
		case <-ctx.Done():
			return
		}
	}
}
