package control

import (
	"context"
	"net/http"
	"time"
)

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Peers returns the daemon's trusted peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var r peersResponse
	err := c.do(ctx, http.MethodGet, "/v1/peers", nil, &r)
	return r.Peers, err
}

// Sessions returns the daemon's live sessions.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var r sessionsResponse
	err := c.do(ctx, http.MethodGet, "/v1/sessions", nil, &r)
	return r.Sessions, err
}

// Services returns the daemon's exposed services.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var r servicesResponse
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, &r)
	return r.Services, err
}

// Forwards returns the daemon's port forwards.
func (c *Client) Forwards(ctx context.Context) ([]Forward, error) {
	var r forwardsResponse
	err := c.do(ctx, http.MethodGet, "/v1/forwards", nil, &r)
	return r.Forwards, err
}

// Proxies returns the daemon's local proxy listeners.
func (c *Client) Proxies(ctx context.Context) ([]Proxy, error) {
	var r proxiesResponse
	err := c.do(ctx, http.MethodGet, "/v1/proxies", nil, &r)
	return r.Proxies, err
}

// Ping asks the daemon to ping peer (a name or a peer ID) once.
func (c *Client) Ping(ctx context.Context, peer string) (PingResult, error) {
	return c.PingWithin(ctx, peer, 0)
}

// PingWithin pings peer, asking the daemon to give it up to timeout (0:
// DefaultPingTimeout; at most MaxPingTimeout), a first dial included.
func (c *Client) PingWithin(ctx context.Context, peer string, timeout time.Duration) (PingResult, error) {
	var r PingResult
	err := c.do(ctx, http.MethodPost, "/v1/ping", pingRequest{Peer: peer, TimeoutMillis: timeout.Milliseconds()}, &r)
	return r, err
}

// Reload asks the daemon to reload its configuration; ReloadReport
// (reload.go) also returns what the reload did not apply.
func (c *Client) Reload(ctx context.Context) error {
	_, err := c.ReloadReport(ctx)
	return err
}
