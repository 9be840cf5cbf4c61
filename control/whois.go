package control

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// Connection is a live connection the daemon made to a service's target for
// a peer's stream. GET /v1/whois?addr=ADDR finds it by Addr, its local
// address: what the target sees as its client, so that a backend without
// the PROXY protocol can tell which peer is behind a connection.
type Connection struct {
	Addr       string    `json:"addr"`   // the connection's local "ip:port"
	Target     string    `json:"target"` // the service's target
	Service    string    `json:"service"`
	Peer       string    `json:"peer"` // the peer's configured name
	PeerID     string    `json:"peer_id"`
	Since      time.Time `json:"since"`
	AgeSeconds float64   `json:"age_seconds"`
}

type whoisResponse struct {
	Connections []Connection `json:"connections"`
}

// Whois returns the daemon's live target connections whose local address
// is addr. None is an error that matches ErrNotFound.
func (c *Client) Whois(ctx context.Context, addr netip.AddrPort) ([]Connection, error) {
	var r whoisResponse
	err := c.do(ctx, http.MethodGet, "/v1/whois?"+url.Values{"addr": {addr.String()}}.Encode(), nil, &r)
	return r.Connections, err
}

// parseWhoisQuery reads the one parameter of /v1/whois: addr, an IP
// address and port.
func parseWhoisQuery(q url.Values) (netip.AddrPort, error) {
	for k := range q {
		if k != "addr" {
			return netip.AddrPort{}, badRequest("unknown parameter %q; /v1/whois takes addr only", k)
		}
	}
	if len(q["addr"]) != 1 {
		return netip.AddrPort{}, badRequest(`give exactly one addr, the backend's client address like "127.0.0.1:53422"`)
	}
	s := q.Get("addr")
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		if len(s) > 64 {
			s = s[:64] + "..."
		}
		return netip.AddrPort{}, badRequest(`addr %q is not an IP address and port like "127.0.0.1:53422" or "[::1]:53422"`, s)
	}
	return ap, nil
}

func (s *Server) getWhois(ctx context.Context, r *http.Request) (any, error) {
	addr, err := parseWhoisQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	cs, err := s.backend.Whois(ctx, addr)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("control: no overlay connection from %s: %w", addr, ErrNotFound)
	}
	return whoisResponse{cs}, nil
}
