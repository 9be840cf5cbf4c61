package node

import (
	"sort"
	"sync"

	"github.com/p2pd/p2pd/transport"
)

// Counters for metrics: inbound streams by service and result, and the
// bytes of the streams spliced to a service by peer and service. Labels are
// configured names only: a service this node does not have counts as
// OtherService, so a peer cannot mint label values.

// OtherService is the service name of streams that asked for a service this
// node does not have, or whose header did not parse.
const OtherService = "other"

// Stream results, as StreamCount.Result: "ok" or the refusal.
const (
	StreamOK                = "ok"
	StreamUnknownService    = "unknown_service"
	StreamAccessDenied      = "access_denied"
	StreamTargetRefused     = "target_refused"
	StreamTargetUnreachable = "target_unreachable"
	StreamOverloaded        = "overloaded"
	StreamBadRequest        = "bad_request"
)

// StreamCount is how many inbound streams to Service ended in Result.
type StreamCount struct {
	Service, Result string
	Count           uint64
}

// ByteCount is how many payload bytes the streams Peer opened to Service
// carried, counted when each stream ends: Received from the peer (written
// to the service's target) and Sent to it.
type ByteCount struct {
	Peer, Service  string
	Received, Sent uint64
}

type streamKey struct{ service, result string }

type byteKey struct{ peer, service string }

// counters is the node's stream counters. The zero value is ready.
type counters struct {
	mu      sync.Mutex // guards streams and bytes
	streams map[streamKey]uint64
	bytes   map[byteKey][2]uint64 // received, sent
}

// statusResult is the result word of a stream answered with status.
func statusResult(s transport.Status) string {
	switch s {
	case transport.StatusOK:
		return StreamOK
	case transport.StatusUnknownService:
		return StreamUnknownService
	case transport.StatusAccessDenied:
		return StreamAccessDenied
	case transport.StatusTargetRefused:
		return StreamTargetRefused
	case transport.StatusTargetUnreachable:
		return StreamTargetUnreachable
	case transport.StatusOverloaded:
		return StreamOverloaded
	}
	return StreamBadRequest
}

// countStream counts an inbound stream that asked for service and was
// answered with status.
func (n *Node) countStream(service string, status transport.Status) {
	name := n.serviceLabel(service)
	c := &n.counters
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil {
		c.streams = make(map[streamKey]uint64)
	}
	c.streams[streamKey{name, statusResult(status)}]++
}

// countBytes adds the bytes of an ended stream from peer to service.
func (n *Node) countBytes(peer, service string, received, sent int64) {
	c := &n.counters
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes == nil {
		c.bytes = make(map[byteKey][2]uint64)
	}
	k := byteKey{peer, service}
	b := c.bytes[k]
	b[0] += uint64(max(received, 0))
	b[1] += uint64(max(sent, 0))
	c.bytes[k] = b
}

// serviceLabel is the configured name of the service a stream asked for,
// or OtherService.
func (n *Node) serviceLabel(asked string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.services[serviceKey(asked)]; s != nil {
		return s.cfg.Name
	}
	return OtherService
}

// StreamCounts returns the inbound stream counters since the node started,
// sorted by service and result.
func (n *Node) StreamCounts() []StreamCount {
	c := &n.counters
	c.mu.Lock()
	out := make([]StreamCount, 0, len(c.streams))
	for k, v := range c.streams {
		out = append(out, StreamCount{Service: k.service, Result: k.result, Count: v})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Result < out[j].Result
	})
	return out
}

// ByteCounts returns the byte counters of ended inbound streams since the
// node started, sorted by peer and service.
func (n *Node) ByteCounts() []ByteCount {
	c := &n.counters
	c.mu.Lock()
	out := make([]ByteCount, 0, len(c.bytes))
	for k, v := range c.bytes {
		out = append(out, ByteCount{Peer: k.peer, Service: k.service, Received: v[0], Sent: v[1]})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].Service < out[j].Service
	})
	return out
}
