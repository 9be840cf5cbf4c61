package control

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// nopBackend answers everything with zero values.
type nopBackend struct{}

func (nopBackend) Status(context.Context) (Status, error)           { return Status{ID: "self"}, nil }
func (nopBackend) Peers(context.Context) ([]Peer, error)            { return nil, nil }
func (nopBackend) Sessions(context.Context) ([]Session, error)      { return nil, nil }
func (nopBackend) Services(context.Context) ([]Service, error)      { return nil, nil }
func (nopBackend) Forwards(context.Context) ([]Forward, error)      { return nil, nil }
func (nopBackend) Proxies(context.Context) ([]Proxy, error)         { return nil, nil }
func (nopBackend) Ping(context.Context, string) (PingResult, error) { return PingResult{}, nil }
func (nopBackend) Reload(context.Context) error                     { return nil }
func (nopBackend) Flows(context.Context) ([]Flow, error)            { return nil, nil }
func (nopBackend) Whois(context.Context, netip.AddrPort) ([]Connection, error) {
	return nil, nil
}

// serveInternal serves s on a fresh socket until the test ends.
func serveInternal(t *testing.T, s *Server) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "p2pd-ctl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p2pd.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		os.RemoveAll(dir)
	})
	return path
}

func TestPeerCredentialsChecked(t *testing.T) {
	s := NewServer(nopBackend{}, nil)
	var seen atomic.Int64
	seen.Store(-1)
	s.allowUID = func(uid uint32) bool { seen.Store(int64(uid)); return true }
	c := NewClient(serveInternal(t, s))
	if st, err := c.Status(context.Background()); err != nil || st.ID != "self" {
		t.Fatalf("Status: %+v, %v", st, err)
	}
	if got := seen.Load(); got != int64(os.Getuid()) {
		t.Fatalf("server read peer uid %d, want %d", got, os.Getuid())
	}
}

func TestPeerCredentialsRefused(t *testing.T) {
	s := NewServer(nopBackend{}, nil)
	s.allowUID = func(uint32) bool { return false } // as if we were another user
	c := NewClient(serveInternal(t, s))
	st, err := c.Status(context.Background())
	if err == nil {
		t.Fatalf("refused connection got an answer: %+v", st)
	}
	var se *ServerError
	if errors.As(err, &se) || errors.Is(err, ErrNotRunning) {
		t.Fatalf("refused connection: err = %v, want a closed connection", err)
	}
}

func TestDefaultAllowedUIDs(t *testing.T) {
	s := NewServer(nopBackend{}, nil)
	self := uint32(os.Getuid())
	if !s.allowUID(self) || !s.allowUID(0) {
		t.Fatal("own uid or root refused")
	}
	for _, other := range []uint32{65534, 1000, 1001} {
		if other != self && s.allowUID(other) {
			t.Fatalf("uid %d allowed (daemon uid %d)", other, self)
		}
	}
}
