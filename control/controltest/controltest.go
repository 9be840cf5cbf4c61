// Package controltest provides a small in-memory control.Backend and a helper
// that serves a Backend on a real Unix socket, for tests of control clients
// such as p2pctl.
package controltest

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/p2pd/p2pd/control"
)

// Backend is a control.Backend over fixed data. Set its fields before it is
// served; they are read-only afterwards. Its methods are safe for concurrent
// use.
type Backend struct {
	Node        control.Status
	PeerList    []control.Peer
	SessionList []control.Session
	ServiceList []control.Service
	ForwardList []control.Forward
	ProxyList   []control.Proxy
	// ConnectionList is what Whois searches, by Addr.
	ConnectionList []control.Connection
	FlowList       []control.Flow
	// PingRTTMillis is the RTT reported for every successful ping.
	PingRTTMillis float64
	// ReloadErr, if set, is returned by Reload.
	ReloadErr error
	// ReloadResult is what ReloadReport returns when ReloadErr is nil.
	ReloadResult control.ReloadResult

	mu      sync.Mutex // guards reloads, pinged and Trust.added
	reloads int
	pinged  []string
}

var _ control.Backend = (*Backend)(nil)

// Status returns the fixed data.
func (b *Backend) Status(context.Context) (control.Status, error) { return b.Node, nil }

// Peers returns the fixed data.
func (b *Backend) Peers(context.Context) ([]control.Peer, error) { return b.PeerList, nil }

// Sessions returns the fixed data.
func (b *Backend) Sessions(context.Context) ([]control.Session, error) {
	return b.SessionList, nil
}

// Services returns the fixed data.
func (b *Backend) Services(context.Context) ([]control.Service, error) {
	return b.ServiceList, nil
}

// Forwards returns the fixed data.
func (b *Backend) Forwards(context.Context) ([]control.Forward, error) {
	return b.ForwardList, nil
}

// Proxies returns the fixed data.
func (b *Backend) Proxies(context.Context) ([]control.Proxy, error) {
	return b.ProxyList, nil
}

// Ping finds peer by name or ID in PeerList. An unknown peer yields an error
// wrapping control.ErrNotFound; a peer that is not connected, another error.
func (b *Backend) Ping(ctx context.Context, peer string) (control.PingResult, error) {
	if err := ctx.Err(); err != nil {
		return control.PingResult{}, err
	}
	b.mu.Lock()
	b.pinged = append(b.pinged, peer)
	b.mu.Unlock()
	for _, p := range b.PeerList {
		if p.Name != peer && p.ID != peer {
			continue
		}
		if p.State != control.PeerConnected {
			return control.PingResult{}, fmt.Errorf("controltest: peer %q is %s", p.Name, p.State)
		}
		return control.PingResult{Peer: p.Name, RTTMillis: b.PingRTTMillis, Remote: p.Endpoint}, nil
	}
	return control.PingResult{}, fmt.Errorf("controltest: unknown peer %q: %w", peer, control.ErrNotFound)
}

// Flows returns FlowList.
func (b *Backend) Flows(context.Context) ([]control.Flow, error) { return b.FlowList, nil }

// Whois returns the entries of ConnectionList whose Addr is addr.
func (b *Backend) Whois(_ context.Context, addr netip.AddrPort) ([]control.Connection, error) {
	var out []control.Connection
	for _, c := range b.ConnectionList {
		if ap, err := netip.ParseAddrPort(c.Addr); err == nil && ap == addr {
			out = append(out, c)
		}
	}
	return out, nil
}

// Reload counts the call and returns ReloadErr.
func (b *Backend) Reload(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	return b.ReloadErr
}

// ReloadReport counts the call, as Reload does, and returns ReloadResult
// or ReloadErr.
func (b *Backend) ReloadReport(ctx context.Context) (control.ReloadResult, error) {
	if err := b.Reload(ctx); err != nil {
		return control.ReloadResult{}, err
	}
	return b.ReloadResult, nil
}

// Reloads returns how many times Reload was called.
func (b *Backend) Reloads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reloads
}

// Pinged returns the peer arguments of every Ping call so far.
func (b *Backend) Pinged() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.pinged...)
}

// SocketPath returns a socket path in a fresh, short temporary directory
// (Unix socket paths are limited to about 100 bytes, which t.TempDir can
// exceed), removed when the test ends.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "p2pd-ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "p2pd.sock")
}

// Serve serves b with a control.Server on a new socket and returns the
// socket's path. The server stops, and is waited for, when the test ends.
func Serve(t testing.TB, b control.Backend) string {
	t.Helper()
	path := SocketPath(t)
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(b, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control server: %v", err)
		}
	})
	return path
}
