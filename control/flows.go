package control

import (
	"context"
	"net/http"
	"time"
)

// Flow is one live UDP flow. GET /v1/flows lists them.
type Flow struct {
	// Direction is "out" for a local client's flow through a udp forward or
	// a SOCKS5 UDP association, "in" for a peer's flow to a udp service here.
	Direction string `json:"direction"`
	Listener  string `json:"listener,omitempty"` // out: the forward's address, or "socks5 ADDR"
	Client    string `json:"client,omitempty"`   // out: the local client's address
	Target    string `json:"target,omitempty"`   // in: the service's target
	Peer      string `json:"peer"`
	Service   string `json:"service"`
	// Carrier is, for an in flow, "datagram" when its datagrams ride QUIC
	// datagrams (a large one still goes on the flow's stream) or "stream".
	Carrier  string `json:"carrier,omitempty"`
	Sent     uint64 `json:"sent"`     // datagrams sent toward the far end
	Received uint64 `json:"received"` // datagrams received from it
	// Dropped counts dropped datagrams by reason: "queue_full" (the reader
	// was slow), "too_large", "dial_failed" (queued while the flow's dial
	// failed), "send_queue" (the flow's send queue was full).
	Dropped     map[string]uint64 `json:"dropped"`
	Since       time.Time         `json:"since"`
	IdleSeconds float64           `json:"idle_seconds"`
}

type flowsResponse struct {
	Flows []Flow `json:"flows"`
}

// Flows returns the daemon's live UDP flows.
func (c *Client) Flows(ctx context.Context) ([]Flow, error) {
	var r flowsResponse
	err := c.do(ctx, http.MethodGet, "/v1/flows", nil, &r)
	return r.Flows, err
}

func (s *Server) getFlows(ctx context.Context, _ *http.Request) (any, error) {
	fs, err := s.backend.Flows(ctx)
	return flowsResponse{nonNil(fs)}, err
}
